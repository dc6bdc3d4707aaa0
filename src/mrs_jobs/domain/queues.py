"""The YARN queue a job runs in, as its arguments, properties and cluster decide it.

MRS's ``queue`` is the queue the application ran in, not always ``default``. The rules follow
the engines' own precedence:

- Spark (SparkSubmit, SparkPython): spark-submit's ``--queue`` wins over any
  ``--conf spark.yarn.queue`` (Spark assigns it last); among the arguments' confs the last
  wins; they come after the job's properties (``spark.yarn.queue``), which come after the
  cluster's ``yarn_queue``. Only options before the application count: after it, arguments are
  the application's own.
- MapReduce: ``-Dmapreduce.job.queuename=`` (or ``-D`` then the pair; also the old
  ``mapred.job.queue.name``) among the arguments, read by the program's ``ToolRunner`` over
  its configuration files; then the cluster's ``yarn_queue`` (the service reserves the key
  when set); then the job's property.
- Other types (SQL jobs run on the cluster's shared SQL server, DistCp and Flink here): the
  cluster's ``yarn_queue`` or ``default``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mrs_jobs.domain.jobtypes import JobType

__all__ = ["DEFAULT_QUEUE", "queue_of"]

DEFAULT_QUEUE = "default"

_SPARK_TYPES = frozenset({JobType.SPARK_SUBMIT, JobType.SPARK_PYTHON})
_SPARK_QUEUE_CONF = "spark.yarn.queue"
_SPARK_FLAGS = frozenset({"--verbose", "-v", "--supervise"})
_MR_QUEUE_KEYS = ("mapreduce.job.queuename", "mapred.job.queue.name")


def queue_of(
    job_type: JobType,
    arguments: Sequence[str],
    properties: Mapping[str, str],
    cluster_queue: str = "",
) -> str:
    """The queue a job of ``job_type`` runs in; ``cluster_queue`` is its YARN cluster's
    ``yarn_queue`` ("" when none or not a YARN cluster)."""
    if job_type in _SPARK_TYPES:
        found = _spark_queue(arguments) or properties.get(_SPARK_QUEUE_CONF, "").strip()
    elif job_type is JobType.MAPREDUCE:
        prop = next((properties[k].strip() for k in _MR_QUEUE_KEYS if k in properties), "")
        found = _hadoop_queue(arguments) or cluster_queue or prop
    else:
        found = ""
    return found or cluster_queue or DEFAULT_QUEUE


def _spark_queue(arguments: Sequence[str]) -> str:
    """The queue spark-submit's options name ("" when none): ``--queue`` over the last conf."""
    option_queue = conf_queue = ""
    i = 0
    while i < len(arguments) and arguments[i].startswith("-"):
        name, eq, value = arguments[i].partition("=")
        if name in _SPARK_FLAGS:
            i += 1
            continue
        if not eq:  # the value is the next argument
            value = arguments[i + 1] if i + 1 < len(arguments) else ""
            i += 1
        i += 1
        if name == "--queue":
            option_queue = value.strip()
        elif name in ("--conf", "-c"):
            key, _, conf_value = value.partition("=")
            if key.strip() == _SPARK_QUEUE_CONF:
                conf_value = conf_value.strip()
                conf_queue = conf_value or conf_queue
    return option_queue or conf_queue


def _hadoop_queue(arguments: Sequence[str]) -> str:
    """The last queue a ``-D`` generic option among the arguments names ("" when none)."""
    found = ""
    for i, arg in enumerate(arguments):
        if arg == "-D" and i + 1 < len(arguments):
            pair = arguments[i + 1]
        elif arg.startswith("-D"):
            pair = arg[2:]
        else:
            continue
        key, _, value = pair.partition("=")
        if key.strip() in _MR_QUEUE_KEYS and value.strip():
            found = value.strip()
    return found
