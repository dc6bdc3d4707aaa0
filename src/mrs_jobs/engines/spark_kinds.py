"""Where a SparkSubmit job's driver runs, per cluster kind: one ``SparkTarget`` per kind.

A target decides the ``--master``, the deploy mode, the extra ``--conf``s and environment, and
whether the launch is detached (spark-submit exits once the cluster accepted the driver). Its
``info`` goes into the job's ``engine.json`` (URLs and file paths, never secrets), so that the
same target follows and cancels the application from the job directory alone, also after a
restart. Client deploy mode keeps the driver in the launcher, observed as a local run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from mrs_jobs.domain.clusterconfig import K8sSettings, StandaloneSettings, YarnSettings
from mrs_jobs.engines import k8s, yarn
from mrs_jobs.engines.base import ClusterSpec, EngineRefused, Observation, RemoteStatus, Usage
from mrs_jobs.engines.kit import conf_args
from mrs_jobs.engines.spark_progress import EVENTS_DIR, find_event_log_app
from mrs_jobs.engines.spark_standalone import (
    StandaloneClient,
    driver_id_from_output,
    master_host,
    rest_url_of,
    submit_master,
    ui_url_of,
)
from mrs_jobs.fsutil import open_regular
from mrs_jobs.runtime import jobdir

__all__ = [
    "KINDS",
    "TARGETS",
    "Placement",
    "RemoteSpark",
    "SparkTarget",
    "cluster_info",
    "launcher_output",
    "placement",
]

_DEPLOY_MODES = frozenset({"client", "cluster"})
_OUTPUT_HEAD_BYTES = 1_000_000
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# Settings of a k8s cluster its client needs later (paths and names, never a token's value).
_K8S_KEYS = ("k8s_namespace", "k8s_api_url", "k8s_token_file", "k8s_ca_file")


@dataclass
class Placement:
    """How spark-submit is pointed at a cluster."""

    kind: str
    master: str
    deploy_mode: str
    confs: list[str] = field(default_factory=list)  # ["--conf", "k=v", ...]
    env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # for engine.json; never secrets
    loopback: bool = True  # the cluster is on this host's loopback (local, tests)

    @property
    def driver_local(self) -> bool:
        """The driver is the launcher process itself (client deploy mode)."""
        return self.deploy_mode == "client"

    @property
    def detached(self) -> bool:
        return self.deploy_mode == "cluster"


def launcher_output(workdir: Path) -> str:
    """The start of the launcher's stdout and stderr (where spark-submit prints the ids)."""
    parts = []
    for name in jobdir.JOB_LOGS:
        fd = open_regular(workdir / name)
        if fd is None:
            continue
        with os.fdopen(fd, "rb") as fh:
            parts.append(fh.read(_OUTPUT_HEAD_BYTES).decode("utf-8", "replace"))
    return "\n".join(parts)


def _event_log_app(workdir: Path) -> str | None:
    found = find_event_log_app(workdir / EVENTS_DIR)
    return found[0] if found else None


class SparkTarget:
    """One cluster kind's Spark: where a driver runs and how it is followed (the defaults are
    those of a driver in the launcher process, which the supervisor follows by its pid)."""

    kind: ClassVar[str]

    def place(
        self, cluster: ClusterSpec, job_id: str, python_app: bool, mode: str | None, queue: bool
    ) -> Placement:
        return Placement(self.kind, cluster.spark_master, "client")

    def info(self, cluster: ClusterSpec, job_id: str) -> dict[str, Any]:
        """Where the job's driver is followed (engine.json; never a secret)."""
        return {}

    def observe(self, info: dict, workdir: Path) -> Observation:
        return Observation()

    def status(
        self, info: dict, workdir: Path, app_id: str | None, launcher_id: str | None
    ) -> RemoteStatus | None:
        return None

    def cancel(self, info: dict, workdir: Path) -> bool:
        """Cancel the application on its cluster; True when the cluster was asked."""
        return False

    def logs(self, info: dict, workdir: Path, app_id: str | None) -> str | None:
        """The ended driver's log from its cluster (None: none is reachable)."""
        return None

    def usage(self, info: dict, workdir: Path, app_id: str | None) -> Usage | None:
        """What the application used on its cluster; None: it ran in the launcher's process
        (a local master), which the shim measured."""
        return None


class LocalTarget(SparkTarget):
    kind = "local"


class StandaloneTarget(SparkTarget):
    """``spark://`` masters: client mode, or jars through the master's REST server."""

    kind = "spark-standalone"

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], StandaloneClient] = {}

    def place(
        self, cluster: ClusterSpec, job_id: str, python_app: bool, mode: str | None, queue: bool
    ) -> Placement:
        if not cluster.spark_master.startswith("spark://"):
            raise EngineRefused("a spark-standalone cluster needs spark_master spark://host:port")
        mode = mode or cluster.settings_as(StandaloneSettings).spark_deploy_mode or "client"
        p = Placement(self.kind, cluster.spark_master, mode, info=self.info(cluster, job_id))
        p.loopback = master_host(cluster.spark_master) in _LOOPBACK
        if mode == "cluster" and python_app:
            # Spark refuses Python applications in standalone cluster deploy mode.
            p.notes.append("Spark standalone runs Python applications in client deploy mode only")
            p.deploy_mode = "client"
        if p.deploy_mode == "cluster":
            # Through the master's REST server; spark-submit returns once the driver is accepted.
            p.master = submit_master(p.info["rest_url"])
            rest = ("spark.master.rest.enabled", "true")
            p.confs = conf_args([rest, ("spark.standalone.submit.waitAppCompletion", "false")])
        return p

    def info(self, cluster: ClusterSpec, job_id: str) -> dict[str, Any]:
        return {"rest_url": rest_url_of(cluster), "ui_url": ui_url_of(cluster)}

    def client(self, info: dict) -> StandaloneClient:
        key = (str(info.get("rest_url")), str(info.get("ui_url")))
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) > 100:
                for old in self._clients.values():
                    old.close()
                self._clients.clear()
            client = self._clients[key] = StandaloneClient(key[0], key[1])
        return client

    def observe(self, info: dict, workdir: Path) -> Observation:
        if info.get("deploy_mode") != "cluster":
            return Observation()
        return Observation(launcher_id=driver_id_from_output(launcher_output(workdir)))

    def status(
        self, info: dict, workdir: Path, app_id: str | None, launcher_id: str | None
    ) -> RemoteStatus | None:
        driver = launcher_id or driver_id_from_output(launcher_output(workdir))
        if driver is None:
            return RemoteStatus("unknown", message="spark-submit printed no driver id")
        return self.client(info).status(driver, app_id)

    def usage(self, info: dict, workdir: Path, app_id: str | None) -> Usage | None:
        """Unknown: a standalone master reports cores and memory granted, not used."""
        return Usage()

    def cancel(self, info: dict, workdir: Path) -> bool:
        if info.get("deploy_mode") == "cluster":
            driver = driver_id_from_output(launcher_output(workdir))
            return driver is not None and self.client(info).kill_driver(driver)
        # Client mode: the supervisor ends the driver process; the master is told too, so
        # the app does not linger on it while the driver shuts down.
        app = _event_log_app(workdir)
        return app is not None and self.client(info).kill_app(app)


class YarnTarget(SparkTarget):
    """``--master yarn`` with the cluster's HADOOP_CONF_DIR, followed through the RM."""

    kind = "yarn"

    def place(
        self, cluster: ClusterSpec, job_id: str, python_app: bool, mode: str | None, queue: bool
    ) -> Placement:
        settings = cluster.settings_as(YarnSettings)
        mode = mode or settings.spark_deploy_mode or "cluster"
        p = Placement(self.kind, "yarn", mode, env=yarn.submit_env(cluster), loopback=False)
        p.info = self.info(cluster, job_id)
        pairs = []
        if settings.yarn_queue and not queue:
            pairs.append(("spark.yarn.queue", settings.yarn_queue))
        if mode == "cluster":
            pairs.append(("spark.yarn.submit.waitAppCompletion", "false"))
        p.confs = conf_args(pairs)
        return p

    def info(self, cluster: ClusterSpec, job_id: str) -> dict[str, Any]:
        info: dict[str, Any] = {"rm_url": yarn.rm_url_of(cluster)}
        if user := cluster.settings_as(YarnSettings).yarn_user:
            info["yarn_user"] = user
        return info

    @staticmethod
    def client(info: dict) -> yarn.YarnClient:
        return yarn.YarnClient(str(info["rm_url"]), user=info.get("yarn_user") or None)

    def observe(self, info: dict, workdir: Path) -> Observation:
        return Observation(app_id=yarn.app_id_from_output(launcher_output(workdir)))

    def status(
        self, info: dict, workdir: Path, app_id: str | None, launcher_id: str | None
    ) -> RemoteStatus | None:
        app = app_id or yarn.app_id_from_output(launcher_output(workdir))
        if app is None:
            return RemoteStatus("unknown", message="spark-submit printed no application id")
        found = self.client(info).status(app)
        # Spark's application master reports a constant 10 % to YARN while it runs: not a
        # count of anything, so no progress rather than a guess (100 comes with a success).
        return None if found is None else replace(found, progress=None)

    def cancel(self, info: dict, workdir: Path) -> bool:
        app = yarn.app_id_from_output(launcher_output(workdir))
        if app is None and info.get("deploy_mode") != "cluster":
            app = _event_log_app(workdir)
        return app is not None and self.client(info).kill(app)

    def logs(self, info: dict, workdir: Path, app_id: str | None) -> str | None:
        """The application master's stderr (the driver's, in cluster deploy mode)."""
        app = app_id or yarn.app_id_from_output(launcher_output(workdir))
        return None if app is None else self.client(info).am_log(app)

    def usage(self, info: dict, workdir: Path, app_id: str | None) -> Usage | None:
        """The application report's vcore and memory seconds (yarn.usage_of_report)."""
        app = app_id or yarn.app_id_from_output(launcher_output(workdir))
        return Usage() if app is None else self.client(info).usage(app)


class K8sTarget(SparkTarget):
    """``k8s://`` masters: always a driver pod (cluster mode), followed through the API."""

    kind = "k8s"

    def place(
        self, cluster: ClusterSpec, job_id: str, python_app: bool, mode: str | None, queue: bool
    ) -> Placement:
        confs = k8s.submit_confs(cluster, job_id)
        p = Placement(self.kind, cluster.spark_master, "cluster", confs=confs, loopback=False)
        if mode == "client":
            p.notes.append("Kubernetes clusters run drivers in cluster deploy mode only")
        p.info = self.info(cluster, job_id)
        return p

    def info(self, cluster: ClusterSpec, job_id: str) -> dict[str, Any]:
        s = cluster.settings_as(K8sSettings)
        known = (s.k8s_namespace, s.k8s_api_url, s.k8s_token_file, s.k8s_ca_file)
        info: dict[str, Any] = {k: v for k, v in zip(_K8S_KEYS, known, strict=True) if v}
        info["k8s_api_url"] = k8s.api_url_of(cluster)
        # The service names the pod (spark.kubernetes.driver.pod.name is reserved), so the
        # pod followed and deleted is always this one, whatever a log says.
        info["driver_pod"] = k8s.driver_pod_name(job_id)
        return info

    @staticmethod
    def client(info: dict) -> k8s.K8sClient:
        settings = K8sSettings(**{k: str(info[k]) for k in _K8S_KEYS if info.get(k)})
        return k8s.K8sClient.from_cluster(ClusterSpec("", kind="k8s", settings=settings))

    def observe(self, info: dict, workdir: Path) -> Observation:
        app_id = k8s.spark_app_id_from_output(launcher_output(workdir))
        return Observation(app_id=app_id, launcher_id=info.get("driver_pod"))

    def status(
        self, info: dict, workdir: Path, app_id: str | None, launcher_id: str | None
    ) -> RemoteStatus | None:
        pod = info.get("driver_pod")
        if not pod:
            return RemoteStatus("unknown", message="no driver pod is known")
        return self.client(info).driver_status(str(pod))

    def cancel(self, info: dict, workdir: Path) -> bool:
        pod = info.get("driver_pod")
        return bool(pod) and self.client(info).delete_driver(str(pod))

    def logs(self, info: dict, workdir: Path, app_id: str | None) -> str | None:
        pod = info.get("driver_pod")
        return self.client(info).driver_log(str(pod)) if pod else None

    def usage(self, info: dict, workdir: Path, app_id: str | None) -> Usage | None:
        """Unknown: the API server keeps no CPU or memory totals of a pod (metrics-server
        samples live pods only, and the executors' pods are gone when the job ends)."""
        return Usage()


TARGETS: dict[str, type[SparkTarget]] = {
    t.kind: t for t in (LocalTarget, StandaloneTarget, YarnTarget, K8sTarget)
}
KINDS = frozenset(TARGETS)


def _target(kind: str | None) -> SparkTarget:
    target = TARGETS.get(kind or "local")
    if target is None:
        raise EngineRefused(f"SparkSubmit jobs cannot run on a cluster of kind {kind}")
    return target()


def placement(
    cluster: ClusterSpec,
    job_id: str,
    *,
    python_app: bool,
    asked_mode: str | None,
    user_queue: bool = False,
) -> Placement:
    """The master, deploy mode and settings of a job on this cluster; ``asked_mode`` is the
    job's own ``--deploy-mode``. Raises EngineRefused on a cluster that is not configured."""
    if asked_mode is not None and asked_mode not in _DEPLOY_MODES:
        raise EngineRefused(f"--deploy-mode must be client or cluster, not {asked_mode}")
    target = _target(cluster.kind)
    return target.place(cluster, job_id, python_app, asked_mode, user_queue)


def cluster_info(cluster: ClusterSpec, job_id: str) -> dict[str, Any]:
    """Where a job's driver is followed on its cluster (URLs, the RM user, the driver pod and
    the k8s client's settings: file paths, never a token's value)."""
    return _target(cluster.kind).info(cluster, job_id) if cluster.kind in TARGETS else {}


class RemoteSpark:
    """The target of each kind, which follows and cancels drivers by the ids in a job's
    directory (the standalone target keeps its master clients between calls)."""

    def __init__(self) -> None:
        self.targets = {kind: target() for kind, target in TARGETS.items()}

    def __call__(self, info: dict) -> SparkTarget:
        return self.targets.get(str(info.get("kind")), self.targets["local"])
