"""P3 breakdown: what one show / submit / list costs, piece by piece, in-process (no HTTP).

Runs the service's own functions on the seeded store, in this process, one call at a time,
and reports the median wall time of each piece (on an idle core this is its CPU cost):

- ``verify``: the SDK-HMAC-SHA256 check of a signed request (SK given: no lookup);
- ``credential_for_ak``: the AK lookup done on every signed request (a read transaction, and
  opening the sealed SK when the tree has a secret box);
- ``JobService.show`` / ``.list`` (default query) / ``.submit``: the use case, its transactions
  and SQL;
- ``to_mrs`` x1 / x10: rendering the MRS JSON of one / ten jobs;
- ``json.dumps`` of the show response.

Comparing the sum with the server CPU per request measured under load (P3) gives the share of
the web framework, middleware and thread hand-offs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BenchStore,
    print_table,
    secret_box,
    seeded_stores,
    summarize,
)

from mrs_jobs.api.signing import sign_headers, verify  # noqa: E402
from mrs_jobs.domain.job import to_mrs  # noqa: E402
from mrs_jobs.domain.validation import ListQuery  # noqa: E402
from mrs_jobs.services.authn import Authenticator  # noqa: E402
from mrs_jobs.services.context import Caller  # noqa: E402
from mrs_jobs.services.jobs import JobService  # noqa: E402
from mrs_jobs.store.jobs import now_ms  # noqa: E402


def _time(fn: Any, n: int) -> dict[str, float]:
    for _ in range(max(3, n // 10)):  # warm-up
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return summarize(out)


def run(bs: BenchStore, *, n: int = 300) -> dict[str, Any]:
    assert bs.tenant is not None
    t = bs.tenant
    tenants = Authenticator(bs.store, secret_box(bs.data_dir, bs.url))
    cred = tenants.credential_for_ak(t.ak)
    assert cred is not None
    caller = Caller(
        project_id=t.project_id, credential_id=cred.id, user_name="admin", request_id="bench"
    )
    jobs = JobService(bs.store, runnable_types=frozenset({"SparkSubmit"}), wake=lambda: None)
    jid = bs.job_ids[len(bs.job_ids) // 2]
    path = f"/v2/{t.project_id}/clusters/{t.cluster_id}/job-executions/{jid}"
    headers = {
        "Content-Type": "application/json",
        "Host": "127.0.0.1:8080",
        "User-Agent": "mrs-jobs-bench/1.0",
        "X-Project-Id": t.project_id,
    }
    headers.update(
        sign_headers(
            ak=t.ak, sk=t.sk, method="GET", url_path=path, raw_query="", headers=headers, body=b""
        )
    )
    lower = {k.lower(): v for k, v in headers.items()}
    from datetime import UTC, datetime

    def do_verify() -> None:
        verify(
            method="GET",
            raw_path=path,
            raw_query="",
            headers=lower,
            body=b"",
            secret_lookup=lambda _ak: t.sk,
            now=datetime.now(UTC),
        )

    job = jobs.show(caller, t.cluster_id, jid)
    ten = jobs.list(caller, t.cluster_id, ListQuery.parse({}))[1]
    counter = iter(range(10**9))

    def do_submit() -> None:
        jobs.submit(
            caller,
            t.cluster_id,
            job_type="SparkSubmit",
            job_name=f"bd-{next(counter)}",
            arguments=["/opt/jobs/pi.py", "10"],
            properties={},
        )

    pieces = {
        "verify (HMAC check)": _time(do_verify, n),
        "credential_for_ak (per request)": _time(lambda: tenants.credential_for_ak(t.ak), n),
        "JobService.show": _time(lambda: jobs.show(caller, t.cluster_id, jid), n),
        "to_mrs x1": _time(lambda: to_mrs(job, now_ms()), n),
        "json.dumps(show)": _time(lambda: json.dumps({"job_detail": to_mrs(job, now_ms())}), n),
        "JobService.submit": _time(do_submit, n),
        "JobService.list (default query)": _time(
            lambda: jobs.list(caller, t.cluster_id, ListQuery.parse({})), max(10, n // 30)
        ),
        "to_mrs x10": _time(lambda: [to_mrs(j, now_ms()) for j in ten], n),
    }
    return {"backend": bs.kind, "jobs": bs.seeded, "pieces": pieces}


def tables(results: list[dict[str, Any]]) -> str:
    names = list(results[0]["pieces"]) if results else []
    headers = ["piece"] + [f"{r['backend']} {r['jobs']:,}" for r in results]
    rows = []
    for name in names:
        rows.append([name] + [f"{r['pieces'][name]['median'] * 1e3:.3f}" for r in results])
    return print_table("P3 breakdown: in-process cost of the pieces (ms, median)", headers, rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("-n", type=int, default=300)
    args = ap.parse_args(argv)
    results = []
    for bs in seeded_stores(args.backends, args.sizes):
        results.append(run(bs, n=args.n))
    tables(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
