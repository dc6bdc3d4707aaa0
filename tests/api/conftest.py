from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from support import SigV4Auth

from mrs_jobs.api.app import create_app
from mrs_jobs.secretbox import load_secret_box
from mrs_jobs.services.bootstrap import bootstrap
from mrs_jobs.services.cluster_admin import ClusterAdmin
from mrs_jobs.services.credentials import CredentialService
from mrs_jobs.services.projects import ProjectService
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store


@dataclass
class Api:
    client: TestClient
    credentials: CredentialService
    store: Store
    project_id: str
    cluster_id: str
    ak: str
    sk: str
    wakes: list[int]

    @property
    def projects(self) -> ProjectService:
        return ProjectService(self.store)

    @property
    def clusters(self) -> ClusterAdmin:
        return ClusterAdmin(self.store)

    @property
    def base(self) -> str:
        return f"/v2/{self.project_id}/clusters/{self.cluster_id}/job-executions"

    def signed_as(self, ak: str, sk: str, project_id: str) -> TestClient:
        client = TestClient(self.client.app, base_url="http://127.0.0.1:8080")
        client.auth = SigV4Auth(ak, sk, project_id)
        return client

    def submit(self, name: str = "demo", job_type: str = "SparkSubmit", **extra) -> str:
        body = {"job_type": job_type, "job_name": name, "arguments": ["/opt/a.py", "1"]}
        body.update(extra)
        r = self.client.post(self.base, json=body)
        assert r.status_code == 200, r.text
        return r.json()["job_submit_result"]["job_id"]


@pytest.fixture
def api(store: Store, settings: Settings) -> Iterator[Api]:
    box = load_secret_box(settings)
    boot = bootstrap(store, box, max_running=10, max_queued=50, parallelism=2)
    assert boot is not None
    wakes: list[int] = []
    app = create_app(
        settings,
        store,
        runnable_types=frozenset({"SparkSubmit"}),
        wake=lambda: wakes.append(1),
    )
    client = TestClient(app, base_url="http://127.0.0.1:8080")
    client.auth = SigV4Auth(boot.ak, boot.sk, boot.project_id)
    yield Api(
        client,
        CredentialService(store, box),
        store,
        boot.project_id,
        boot.cluster_id,
        boot.ak,
        boot.sk,
        wakes,
    )
    client.close()
