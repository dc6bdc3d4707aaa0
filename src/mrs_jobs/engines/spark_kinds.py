"""Where a SparkSubmit job's driver runs, per cluster kind, and how it is followed there.

``placement()`` decides, for ``local``, ``spark-standalone``, ``yarn`` and ``k8s`` clusters, the
``--master``, the deploy mode, the extra ``--conf``s and environment, and whether the launch is
detached (spark-submit exits once the cluster accepted the driver). Its ``info`` goes into the
job's ``engine.json`` (no secrets: URLs and file paths only), so that ``RemoteSpark`` can follow
and cancel the application from the job directory alone, also after a restart of the service.

Client deploy mode keeps the driver in the launcher process: the event log and the UI port the
engine chose apply and the app is observed as for local runs. Cluster deploy mode puts the driver
on the cluster: its state comes from the standalone master (``spark_standalone``), the YARN
ResourceManager (``yarn``) or the Kubernetes API (``k8s``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrs_jobs.engines import k8s, yarn
from mrs_jobs.engines.base import ClusterSpec, EngineRefused, Observation, RemoteStatus
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

__all__ = ["KINDS", "Placement", "RemoteSpark", "cluster_info", "launcher_output", "placement"]

KINDS = frozenset({"local", "spark-standalone", "yarn", "k8s"})
_DEPLOY_MODES = frozenset({"client", "cluster"})
_OUTPUT_HEAD_BYTES = 1_000_000
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# Settings of a k8s cluster its client needs later (paths and names, never a token's value).
_K8S_KEYS = ("k8s_namespace", "k8s_api_url", "k8s_token_file", "k8s_ca_file")
_K8S_KEYS += ("k8s_delete_grace_seconds",)


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


def _conf(pairs: list[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for key, value in pairs:
        out += ["--conf", f"{key}={value}"]
    return out


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
    kind = cluster.kind or "local"
    if asked_mode is not None and asked_mode not in _DEPLOY_MODES:
        raise EngineRefused(f"--deploy-mode must be client or cluster, not {asked_mode}")
    configured = (cluster.extra.get("spark_deploy_mode") or "").strip() or None
    if configured is not None and configured not in _DEPLOY_MODES:
        raise EngineRefused(
            f"spark_deploy_mode of this cluster must be client or cluster: {configured}"
        )
    if kind == "local":
        return Placement(kind, cluster.spark_master, "client")
    if kind == "spark-standalone":
        return _standalone(cluster, python_app, asked_mode, configured)
    if kind == "yarn":
        return _yarn(cluster, asked_mode, configured, user_queue)
    if kind == "k8s":
        confs = k8s.submit_confs(cluster, job_id)
        p = Placement(kind, cluster.spark_master, "cluster", confs=confs, loopback=False)
        if asked_mode == "client":
            p.notes.append("Kubernetes clusters run drivers in cluster deploy mode only")
        p.info = cluster_info(cluster, job_id)
        return p
    raise EngineRefused(f"SparkSubmit jobs cannot run on a cluster of kind {kind}")


def cluster_info(cluster: ClusterSpec, job_id: str) -> dict[str, Any]:
    """Where a job's driver is followed on its cluster: URLs, the RM user, the driver pod and
    the k8s client's settings (file paths, never a token's value)."""
    kind = cluster.kind or "local"
    if kind == "spark-standalone":
        return {"rest_url": rest_url_of(cluster), "ui_url": ui_url_of(cluster)}
    if kind == "yarn":
        info: dict[str, Any] = {"rm_url": yarn.rm_url_of(cluster)}
        if cluster.extra.get("yarn_user"):
            info["yarn_user"] = cluster.extra["yarn_user"]
        return info
    if kind == "k8s":
        info = {k: cluster.extra[k] for k in _K8S_KEYS if cluster.extra.get(k)}
        info["k8s_api_url"] = k8s.api_url_of(cluster)
        # The service names the pod (spark.kubernetes.driver.pod.name is reserved), so the
        # pod followed and deleted is always this one, whatever a log says.
        info["driver_pod"] = k8s.driver_pod_name(job_id)
        return info
    return {}


def _standalone(
    cluster: ClusterSpec, python_app: bool, asked: str | None, configured: str | None
) -> Placement:
    if not cluster.spark_master.startswith("spark://"):
        raise EngineRefused("a spark-standalone cluster needs spark_master spark://host:port")
    mode = asked or configured or "client"
    info = cluster_info(cluster, "")
    notes = []
    if mode == "cluster" and python_app:
        # Spark refuses Python applications in standalone cluster deploy mode.
        notes.append("Spark standalone runs Python applications in client deploy mode only")
        mode = "client"
    loopback = master_host(cluster.spark_master) in _LOOPBACK
    if mode == "client":
        return Placement(
            "spark-standalone",
            cluster.spark_master,
            "client",
            notes=notes,
            info=info,
            loopback=loopback,
        )
    # Submitted through the master's REST server; spark-submit returns once the driver is
    # accepted (no waiting for the app to complete).
    confs = _conf(
        [
            ("spark.master.rest.enabled", "true"),
            ("spark.standalone.submit.waitAppCompletion", "false"),
        ]
    )
    return Placement(
        "spark-standalone",
        submit_master(info["rest_url"]),
        "cluster",
        confs=confs,
        notes=notes,
        info=info,
        loopback=loopback,
    )


def _yarn(
    cluster: ClusterSpec, asked: str | None, configured: str | None, user_queue: bool
) -> Placement:
    mode = asked or configured or "cluster"
    env = yarn.submit_env(cluster)
    p = Placement("yarn", "yarn", mode, env=env, info=cluster_info(cluster, ""), loopback=False)
    queue = (cluster.extra.get("yarn_queue") or "").strip()
    pairs = []
    if queue and not user_queue:
        pairs.append(("spark.yarn.queue", queue))
    if mode == "cluster":
        pairs.append(("spark.yarn.submit.waitAppCompletion", "false"))
    p.confs = _conf(pairs)
    return p


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


class RemoteSpark:
    """Follows and cancels Spark drivers on clusters by the ids in the job directory."""

    def __init__(self) -> None:
        self._standalone: dict[tuple[str, str], StandaloneClient] = {}

    def standalone(self, info: dict) -> StandaloneClient:
        key = (str(info.get("rest_url")), str(info.get("ui_url")))
        client = self._standalone.get(key)
        if client is None:
            if len(self._standalone) > 100:
                for old in self._standalone.values():
                    old.close()
                self._standalone.clear()
            client = self._standalone[key] = StandaloneClient(key[0], key[1])
        return client

    @staticmethod
    def _yarn(info: dict) -> yarn.YarnClient:
        return yarn.YarnClient(str(info["rm_url"]), user=info.get("yarn_user") or None)

    @staticmethod
    def _k8s(info: dict) -> k8s.K8sClient:
        extra = {k: str(info[k]) for k in _K8S_KEYS if info.get(k)}
        extra["k8s_api_url"] = str(info["k8s_api_url"])
        return k8s.K8sClient.from_cluster(ClusterSpec("", kind="k8s", extra=extra))

    def observe(self, info: dict, workdir: Path) -> Observation:
        """Ids of a cluster-mode driver from the launcher's output (client mode: nothing)."""
        kind = info.get("kind")
        if info.get("deploy_mode") != "cluster" and kind != "yarn":
            return Observation()
        out = launcher_output(workdir)
        if kind == "spark-standalone":
            return Observation(launcher_id=driver_id_from_output(out))
        if kind == "yarn":
            return Observation(app_id=yarn.app_id_from_output(out))
        if kind == "k8s":
            return Observation(
                app_id=k8s.spark_app_id_from_output(out), launcher_id=info.get("driver_pod")
            )
        return Observation()

    def status(
        self, info: dict, workdir: Path, app_id: str | None, launcher_id: str | None
    ) -> RemoteStatus | None:
        kind = info.get("kind")
        if kind == "spark-standalone":
            driver = launcher_id or driver_id_from_output(launcher_output(workdir))
            if driver is None:
                return RemoteStatus("unknown", message="spark-submit printed no driver id")
            return self.standalone(info).status(driver, app_id)
        if kind == "yarn":
            app = app_id or yarn.app_id_from_output(launcher_output(workdir))
            if app is None:
                return RemoteStatus("unknown", message="spark-submit printed no application id")
            return self._yarn(info).status(app)
        if kind == "k8s":
            pod = info.get("driver_pod")
            if not pod:
                return RemoteStatus("unknown", message="no driver pod is known")
            return self._k8s(info).driver_status(str(pod))
        return None

    def cancel(self, info: dict, workdir: Path) -> bool:
        """Cancel the application on its cluster; True when the cluster was asked."""
        kind = info.get("kind")
        cluster_mode = info.get("deploy_mode") == "cluster"
        if kind == "spark-standalone":
            client = self.standalone(info)
            if cluster_mode:
                driver = driver_id_from_output(launcher_output(workdir))
                return driver is not None and client.kill_driver(driver)
            # Client mode: the supervisor ends the driver process; the master is told too, so
            # the app does not linger on it while the driver shuts down.
            found = find_event_log_app(workdir / EVENTS_DIR)
            return found is not None and client.kill_app(found[0])
        if kind == "yarn":
            app = yarn.app_id_from_output(launcher_output(workdir))
            if app is None and not cluster_mode:
                found = find_event_log_app(workdir / EVENTS_DIR)
                app = found[0] if found else None
            return app is not None and self._yarn(info).kill(app)
        if kind == "k8s":
            pod = info.get("driver_pod")
            return bool(pod) and self._k8s(info).delete_driver(str(pod))
        return False
