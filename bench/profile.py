"""Profile the server (py-spy, sampling, all threads) while a benchmark scenario runs.

    python bench/profile.py purge  --backend sqlite --size 100000
    python bench/profile.py delete --backend postgres --size 100000
    python bench/profile.py list   --backend sqlite --size 1000000 [--query job_name=job-0042]
    python bench/profile.py submit|show --backend sqlite --size 100000

Writes bench/out/profile-<scenario>-<backend>.raw (py-spy collapsed stacks; open with
speedscope or summarise with ``bench/stacks.py``) and prints the top frames.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stacks  # noqa: E402
from common import OUT, VENV_BIN, Api, Server, check, log, make_store, seed_jobs  # noqa: E402


def _spy(pid: int, out: Path, seconds: float, rate: int = 250) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(VENV_BIN / "py-spy"),
            "record",
            "-r",
            str(rate),
            "-d",
            str(int(seconds) + 1),
            "-f",
            "raw",
            "-o",
            str(out),
            "-p",
            str(pid),
            "--threads",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["purge", "delete", "list", "submit", "show"])
    ap.add_argument("--backend", default="sqlite")
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--query", default="", help="list query string")
    ap.add_argument("--top", type=int, default=35)
    args = ap.parse_args(argv)

    OUT.mkdir(parents=True, exist_ok=True)
    raw = OUT / f"profile-{args.scenario}-{args.backend}.raw"
    bs = make_store(args.backend)
    try:
        log(f"seeding {args.backend} {args.size:,}")
        seed_jobs(bs, args.size)
        # Rate limit lifted as in P3 (its code still runs).
        server = Server.mrs(
            bs,
            MRS_JOBS_RATE_LIMIT_PER_SECOND="1e9",
            MRS_JOBS_RATE_LIMIT_BURST="1000000000",
        )
        with server:
            api = Api(server, bs.tenant)  # type: ignore[arg-type]
            ids = list(bs.job_ids)
            if args.scenario == "purge":
                batch = [ids[k : k + 1000] for k in range(0, 5000, 1000)]
                reqs = [
                    api.prepare("POST", "/batch-delete", body={"job_id_list": b}) for b in batch
                ]
                spy = _spy(server.pid, raw, args.seconds)
                time.sleep(0.5)
                for r in reqs:
                    status, body, _ = api.send(r)
                    check(status, 202, body, "batch-delete")
                spy.wait()
            elif args.scenario == "delete":
                spy = _spy(server.pid, raw, args.seconds)
                time.sleep(0.5)
                t0, k = time.time(), 0
                while time.time() - t0 < args.seconds - 1:
                    b = ids[k : k + 1000]
                    k += 1000
                    status, body, _ = api.call("POST", "/batch-delete", body={"job_id_list": b})
                    check(status, 202, body, "batch-delete")
                    time.sleep(0.3)  # let the purge run outside the call being profiled
                spy.wait()
            else:
                if args.scenario == "list":
                    reqs = [api.prepare("GET", "", args.query)]
                elif args.scenario == "show":
                    reqs = [api.prepare("GET", "/" + i) for i in ids[:500]]
                else:
                    reqs = [
                        api.prepare(
                            "POST",
                            "",
                            body={
                                "job_type": "SparkSubmit",
                                "job_name": f"prof-{k}",
                                "arguments": ["/opt/jobs/pi.py", "10"],
                                "properties": {},
                            },
                        )
                        for k in range(20000)
                    ]
                from loadgen import run_load

                spy = _spy(server.pid, raw, args.seconds)
                res = run_load(
                    server.host,
                    server.port,
                    lambda i: reqs,
                    processes=2,
                    conns=8,
                    warmup=0.3,
                    seconds=args.seconds - 1.5,
                )
                log(f"{args.scenario}: {res.rate:.0f}/s statuses={res.statuses}")
                spy.wait()
            api.close()
    finally:
        bs.drop()
    print(f"\n{raw}")
    stacks.main([str(raw), "--top", str(args.top)])
    print("\n-- self time --")
    stacks.main([str(raw), "--top", "20", "--leaf"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
