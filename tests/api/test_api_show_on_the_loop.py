"""A show on PostgreSQL reads on the event loop's own connections while the app runs
(api/offload.py ``show_job``, store/async_reads.py): no worker thread for a found job, the
same answers and errors as before."""

from __future__ import annotations

import uuid

import pytest
from api_helpers import assert_error, base_of, other_project


@pytest.fixture
def pg_live(api):
    if api.store.dialect.is_sqlite:
        pytest.skip("PostgreSQL's path (SQLite reads inline)")
    with api.client:  # the lifespan opens the async connections
        yield api


def test_a_found_job_is_read_without_the_synchronous_store(pg_live, monkeypatch) -> None:
    api = pg_live
    job_id = api.submit("on-the-loop")
    ctx = api.client.app.state.ctx
    assert ctx.jobs.reads is not None
    synchronous = []
    real_show = ctx.jobs.show

    def counted(*args, **kwargs):
        synchronous.append(args)
        return real_show(*args, **kwargs)

    monkeypatch.setattr(ctx.jobs, "show", counted)
    r = api.client.get(f"{api.base}/{job_id}")
    assert r.status_code == 202, r.text
    assert r.json()["job_detail"]["job_id"] == job_id
    assert r.json()["job_detail"]["job_name"] == "on-the-loop"
    assert synchronous == []
    # a miss goes to the synchronous show, which tells which error it is
    missing = str(uuid.uuid4())
    assert missing in assert_error(api.client.get(f"{api.base}/{missing}"), 400, "0176")
    assert len(synchronous) == 1


def test_errors_are_the_same_as_through_the_threads(pg_live) -> None:
    api = pg_live
    theirs = other_project(api).submit()
    r = api.client.get(f"{api.base}/{theirs}")  # another project's job: as if missing
    assert theirs in assert_error(r, 400, "0176")
    unknown_cluster = base_of(api.project_id, str(uuid.uuid4()))
    job_id = api.submit()
    shown = api.client.get(f"{unknown_cluster}/{job_id}")
    killed = api.client.post(f"{unknown_cluster}/{job_id}/kill")  # always the threads' path
    assert shown.status_code == killed.status_code >= 400
    assert shown.json()["error_code"] == killed.json()["error_code"] != "0176"
    assert api.client.get(f"{api.base}/a%00b").status_code == 400
