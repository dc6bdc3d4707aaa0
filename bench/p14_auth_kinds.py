"""P14: a show through an X-Auth-Token vs through an AK/SK signature, in one run.

Both kinds of credential are now kept by the server's credential cache (api/credcache.py);
before, every token request read the store (28 % fewer shows/s than AK/SK, measured from
outside). The same seeded store and server; windows alternate token / AK/SK per repetition;
load as P3's (2 processes x 16 keep-alive connections, pre-built requests).

    .venv/bin/python bench/p14_auth_kinds.py --backends sqlite,postgres --size 10000

Target: token within 10 % of AK/SK.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Server, log, seeded_stores, signed_request  # noqa: E402
from p3_throughput import BENCH_ENV, measure  # noqa: E402

from mrs_jobs.services.credentials import CredentialService  # noqa: E402


def token_requests(token: str, host: str, port: int, prefix: str, ids: list[str]):  # noqa: ANN201
    def make(index: int) -> list[bytes]:
        rng = random.Random(index)
        return [
            (
                f"GET {prefix}/{rng.choice(ids)} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"User-Agent: mrs-jobs-bench/1.0\r\nX-Auth-Token: {token}\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
            for _ in range(500)
        ]

    return make


def aksk_requests(tenant, host: str, port: int, prefix: str, ids: list[str]):  # noqa: ANN001, ANN201
    def make(index: int) -> list[bytes]:
        rng = random.Random(index)
        return [
            signed_request(tenant, host, port, "GET", f"{prefix}/{rng.choice(ids)}")
            for _ in range(500)
        ]

    return make


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--size", default="10000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    for bs in seeded_stores(args.backends, args.size):
        tenant = bs.tenant
        assert tenant is not None
        token = CredentialService(bs.store).create_token(tenant.project_id, "bench", 86_400)
        prefix = f"/v2/{tenant.project_id}/clusters/{tenant.cluster_id}/job-executions"
        env = {**BENCH_ENV, "MRS_JOBS_RETENTION_DAYS": "0"}  # the seeded jobs ended in 2025
        with Server.mrs(bs, **env) as server:
            kinds = {
                "token": token_requests(token, server.host, server.port, prefix, bs.job_ids),
                "aksk": aksk_requests(tenant, server.host, server.port, prefix, bs.job_ids),
            }
            got: dict[str, list[dict]] = {k: [] for k in kinds}
            for rep in range(args.reps):
                for kind, make in kinds.items():
                    r = measure(
                        server, make, bs, processes=2, conns=16, seconds=args.seconds, warmup=0.5
                    )
                    got[kind].append(r)
                    log(f"P14 {bs.kind} rep{rep} {kind}: {r['rate']:.0f}/s {r['statuses']}")
        rate = {k: statistics.median(r["rate"] for r in v) for k, v in got.items()}
        cpu = {k: statistics.median(r["server_cpu_per_req_ms"] for r in v) for k, v in got.items()}
        ratios = [t["rate"] / a["rate"] for t, a in zip(got["token"], got["aksk"], strict=True)]
        print(
            f"P14 {bs.kind} {bs.seeded:,} jobs, show: token {rate['token']:.0f}/s "
            f"({cpu['token']:.2f} ms server+db CPU), AK/SK {rate['aksk']:.0f}/s "
            f"({cpu['aksk']:.2f} ms); token/AK/SK {statistics.median(ratios):.2f} "
            f"({min(ratios):.2f}-{max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
