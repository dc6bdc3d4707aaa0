"""P1: batch delete through the HTTP API vs. the raw SQL delete of the same rows.

For each batch size (1, 10, 100, 1,000 ids) and repetition, a fresh random set S of seeded
finished jobs is taken, then (warm cache for both: the rows are read first)
  raw:  ``DELETE FROM job_events WHERE job_id IN (S)`` and ``DELETE FROM jobs WHERE id IN
        (S)`` in one transaction, timed BEGIN..COMMIT in this process over an open pooled
        connection; the rows are then put back (untimed);
  folders: each job of S gets its directory at its recorded ``workdir`` (``<data dir>/jobs/
        <id>``) as a real ended job leaves it: stdout.log, stderr.log, launch.json, a nested
        directory with an event log, ~14 KB in 5 files (untimed; ``--no-folders``: none);
  api:  ``POST .../job-executions/batch-delete {"job_id_list": S}``, pre-signed, timed as the
        client sees it on a keep-alive connection (signature checked by the server);
  gone: from sending that request until no row of S is left in ``jobs`` nor in
        ``job_events`` (polled every 5 ms): what the supervisor's purge adds to the answer;
  files: from sending it until none of the folders is left anywhere in the data dir (the
        purge's trash included), so passes never overlap.
The figures are api/raw and gone/raw per repetition (median, min-max).

Purge throughput, separately: 5 x 1,000 ids are batch-deleted back to back and the time until
the supervisor has removed all their rows (jobs + events) is measured; the "physical limit"
is ``store.jobs.purge()`` (the purge's own SQL) run directly on another 5,000 ids.

Targets at 1,000 ids, on SQLite and PostgreSQL: api <= 2x raw, rows gone <= 1.5x raw.

    .venv/bin/python bench/p1_batch_delete.py --sizes 100000 --counts 1000 --reps 7
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    Api,
    BenchStore,
    Server,
    check,
    log,
    print_table,
    seeded_stores,
    summarize,
)
from sqlalchemy import bindparam, insert, select, text  # noqa: E402

from mrs_jobs.store import jobs as job_store  # noqa: E402
from mrs_jobs.store.tables import job_events, jobs  # noqa: E402

COUNTS = (1, 10, 100, 1000)
TARGET_RATIO = 2.0
TARGET_GONE = 1.5

_RAW_DELETE = text("DELETE FROM jobs WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))
_RAW_DELETE_EVENTS = text("DELETE FROM job_events WHERE job_id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
_COUNT_LEFT = text("SELECT count(*) FROM jobs WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
_EVENTS_LEFT = text("SELECT count(*) FROM job_events WHERE job_id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
#: What a real ended job leaves in its directory (name -> bytes); "spark-events" is nested.
_FOLDER_FILES = {
    "stdout.log": 6000,
    "stderr.log": 4000,
    "launch.json": 900,
    "exit.json": 120,
    "spark-events/local-1700000000000": 3000,
}


class IdPool:
    """Seeded ids in random order; each step takes ids not used since the last reshuffle.

    Deleted jobs are put back after each step (see :func:`restore`), so the store keeps its
    size and ids can be reused once the pool runs dry (small stores)."""

    def __init__(self, ids: list[str], seed: int = 7) -> None:
        self.all = list(ids)
        self.rng = random.Random(seed)
        self.ids: list[str] = []

    def take(self, n: int) -> list[str]:
        if len(self.ids) < n:
            self.ids = list(self.all)
            self.rng.shuffle(self.ids)
        out, self.ids = self.ids[-n:], self.ids[:-n]
        return out


def snapshot(bs: BenchStore, ids: list[str]) -> tuple[list[dict], list[dict]]:
    """The jobs rows and event rows of ``ids`` (read before a delete, to restore after)."""
    with bs.store.read() as conn:
        rows = []
        evs = []
        for k in range(0, len(ids), 900):
            part = ids[k : k + 900]
            rows += [
                dict(r._mapping) for r in conn.execute(select(jobs).where(jobs.c.id.in_(part)))
            ]
            evs += [
                dict(r._mapping)
                for r in conn.execute(select(job_events).where(job_events.c.job_id.in_(part)))
            ]
    assert len(rows) == len(ids), (len(rows), len(ids))
    return rows, evs


def restore(bs: BenchStore, saved: tuple[list[dict], list[dict]]) -> None:
    """Put purged jobs back (untimed), so the store keeps its size for the next step."""
    rows, evs = saved
    with bs.store.write() as conn:
        conn.execute(insert(jobs), rows)
        if evs:
            conn.execute(
                insert(job_events), [{k: v for k, v in e.items() if k != "id"} for e in evs]
            )


def raw_delete(
    bs: BenchStore, ids: list[str], saved: tuple[list[dict], list[dict]], *, events: bool = False
) -> float:
    """Time one ``DELETE FROM jobs WHERE id IN (...)`` transaction (``events``: the jobs'
    ``job_events`` rows first, in the same transaction); the rows are put back.

    ``saved`` was just read from these rows, so their pages are as warm as for the API call."""
    t0 = time.perf_counter()
    with bs.store.write() as conn:
        if events:
            conn.execute(_RAW_DELETE_EVENTS, {"ids": ids})
        res = conn.execute(_RAW_DELETE, {"ids": ids})
    dt = time.perf_counter() - t0
    assert res.rowcount == len(ids), res.rowcount
    restore(bs, saved if events else (saved[0], []))
    return dt


def _left(bs: BenchStore, query: Any, ids: list[str]) -> int:
    with bs.store.read() as conn:
        return sum(
            conn.execute(query, {"ids": ids[k : k + 900]}).scalar_one()
            for k in range(0, len(ids), 900)
        )


def wait_gone(bs: BenchStore, ids: list[str], timeout: float = 120.0) -> float:
    """Seconds until none of ``ids`` has a jobs row nor a job_events row any more (the
    supervisor's purge)."""
    t0 = time.perf_counter()
    while True:
        left = _left(bs, _COUNT_LEFT, ids)
        if left == 0:
            left = _left(bs, _EVENTS_LEFT, ids)
        if left == 0:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"{left} deleted jobs still not purged after {timeout}s")
        time.sleep(0.005)


def make_folders(bs: BenchStore, ids: list[str]) -> None:
    """The job directories of ``ids`` at their recorded workdir, as a real ended job leaves
    them (see ``_FOLDER_FILES``), made 0700 like the supervisor's."""
    for job_id in ids:
        root = bs.data_dir / "jobs" / job_id
        (root / "spark-events").mkdir(parents=True, mode=0o700, exist_ok=True)
        for name, size in _FOLDER_FILES.items():
            (root / name).write_bytes(b"x" * size)


def _folders_left(bs: BenchStore, ids: list[str]) -> int:
    """Folders of ``ids`` still on disk: at their workdir or anywhere under the data dir's
    top-level directories other than ``jobs`` (a purge's trash)."""
    jobs_dir = bs.data_dir / "jobs"
    left = sum(1 for job_id in ids if os.path.lexists(jobs_dir / job_id))
    wanted = set(ids)
    for top in bs.data_dir.iterdir():
        if top.name != "jobs" and top.is_dir() and not top.is_symlink():
            left += sum(1 for entry in os.scandir(top) if entry.name.split(".")[0] in wanted)
    return left


def wait_files_gone(bs: BenchStore, ids: list[str], timeout: float = 120.0) -> float:
    """Seconds until no folder of ``ids`` is left (see :func:`_folders_left`)."""
    t0 = time.perf_counter()
    while (left := _folders_left(bs, ids)) > 0:
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"{left} folders of purged jobs still on disk after {timeout}s")
        time.sleep(0.005)
    return time.perf_counter() - t0


def clear_folders(bs: BenchStore) -> None:
    shutil.rmtree(bs.data_dir / "jobs", ignore_errors=True)


def events_of(bs: BenchStore, ids: list[str]) -> int:
    with bs.store.read() as conn:
        q = select(job_events.c.id).where(job_events.c.job_id.in_(ids))
        return len(conn.execute(q).all())


def run(
    bs: BenchStore,
    server: Server,
    *,
    reps: int = 7,
    counts: tuple[int, ...] = COUNTS,
    purge_batches: int = 5,
    only_purge: bool = False,
    folders: bool = True,
) -> dict[str, Any]:
    assert bs.tenant is not None
    api = Api(server, bs.tenant)
    pool = IdPool(bs.job_ids)
    out: dict[str, Any] = {"backend": bs.kind, "jobs": bs.seeded, "counts": {}, "folders": folders}

    # Warm-up: one of each, not recorded.
    ids = pool.take(10)
    saved = snapshot(bs, ids)
    raw_delete(bs, ids, saved, events=True)
    status, body, _ = api.call("POST", "/batch-delete", body={"job_id_list": ids})
    check(status, 202, body, "batch-delete")
    wait_gone(bs, ids)
    restore(bs, saved)

    for n in () if only_purge else counts:
        out["counts"][n] = _repeat(bs, api, pool, n, reps, folders)
        c = out["counts"][n]
        log(
            f"P1 {bs.kind} {bs.seeded:,} n={n}: api {c['api']['median'] * 1e3:.1f} ms, "
            f"gone {c['gone']['median'] * 1e3:.1f} ms, raw {c['raw']['median'] * 1e3:.1f} ms, "
            f"gone/raw {c['gone_ratio']['median']:.2f}x"
        )
    if purge_batches > 0:
        out["purge"] = _throughput(bs, api, pool, purge_batches, folders)
    api.close()
    return out


def _repeat(bs: BenchStore, api: Api, pool: IdPool, n: int, reps: int, folders: bool) -> dict:
    """``reps`` repetitions of: raw DELETE (jobs + events), folders made, batch delete, rows
    gone, folders gone, rows put back."""
    api_s, raw_s, ratios, gone_s, gone_ratios, files_s, after_s = [], [], [], [], [], [], []
    for _ in range(reps):
        ids = pool.take(n)
        saved = snapshot(bs, ids)
        r = raw_delete(bs, ids, saved, events=True)
        if folders:
            make_folders(bs, ids)
        req = api.prepare("POST", "/batch-delete", body={"job_id_list": ids})
        t0 = time.perf_counter()
        status, body, a = api.send(req)
        check(status, 202, body, "batch-delete")
        after = wait_gone(bs, ids)
        gone = time.perf_counter() - t0
        files = (wait_files_gone(bs, ids) + gone) if folders else gone
        restore(bs, saved)
        api_s.append(a)
        raw_s.append(r)
        ratios.append(a / r)
        gone_s.append(gone)
        gone_ratios.append(gone / r)
        files_s.append(files)
        after_s.append(after)
    return {
        "api": summarize(api_s),
        "raw": summarize(raw_s),
        "ratio": summarize(ratios),
        "purge_after_call": summarize(after_s),
        "gone": summarize(gone_s),
        "gone_ratio": summarize(gone_ratios),
        "files_gone": summarize(files_s),
        "gone_ratios": gone_ratios,
    }


def _throughput(bs: BenchStore, api: Api, pool: IdPool, batches_n: int, folders: bool) -> dict:
    """The supervisor's purge rate, from the first call to the last row gone, vs the purge's
    own SQL (store.jobs.purge) run directly on the same jobs."""
    all_ids = pool.take(1000 * batches_n)
    batches = [all_ids[k : k + 1000] for k in range(0, len(all_ids), 1000)]
    saved = snapshot(bs, all_ids)
    n_events = len(saved[1])
    if folders:
        make_folders(bs, all_ids)
    reqs = [api.prepare("POST", "/batch-delete", body={"job_id_list": b}) for b in batches]
    t0 = time.perf_counter()
    for req in reqs:
        status, body, _ = api.send(req)
        check(status, 202, body, "batch-delete")
    calls = time.perf_counter() - t0
    gone = wait_gone(bs, all_ids) + calls
    if folders:
        wait_files_gone(bs, all_ids)
    restore(bs, saved)
    t0 = time.perf_counter()
    for k in range(0, len(all_ids), 500):  # as the supervisor: <= 500 jobs per transaction
        with bs.store.write() as conn:
            job_store.purge(conn, all_ids[k : k + 500])
    direct = time.perf_counter() - t0
    restore(bs, saved)
    return {
        "jobs": len(all_ids),
        "events": n_events,
        "supervisor_s": gone,
        "supervisor_jobs_per_s": len(all_ids) / gone,
        "direct_s": direct,
        "direct_jobs_per_s": len(all_ids) / direct,
    }


def _ms(s: dict[str, float]) -> str:
    return f"{s['median'] * 1e3:.1f} ({s['min'] * 1e3:.1f}-{s['max'] * 1e3:.1f})"


def tables(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        for n, c in r["counts"].items():
            ratio = c["ratio"]
            mark = "" if int(n) != 1000 else (" ok" if ratio["median"] <= TARGET_RATIO else " MISS")
            rows.append(
                [
                    r["backend"],
                    f"{r['jobs']:,}",
                    n,
                    _ms(c["api"]),
                    _ms(c["raw"]),
                    f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f}){mark}",
                    f"{c['purge_after_call']['median'] * 1e3:.0f}",
                ]
            )
    text_ = print_table(
        "P1 batch delete: API call vs raw DELETE of the same rows, jobs + events (ms; median "
        "(min-max))",
        [
            "db",
            "jobs",
            "ids",
            "API ms",
            "raw DELETE ms",
            "API/raw (target <=2x @1000)",
            "purged after (ms)",
        ],
        rows,
    )
    text_ += "\n" + gone_table(results)
    prow = []
    for r in results:
        p = r.get("purge")
        if not p:
            continue
        prow.append(
            [
                r["backend"],
                f"{r['jobs']:,}",
                f"{p['jobs']:,} (+{p['events']:,} events)",
                f"{p['supervisor_s']:.2f}",
                f"{p['supervisor_jobs_per_s']:,.0f}",
                f"{p['direct_s']:.2f}",
                f"{p['direct_jobs_per_s']:,.0f}",
                f"{p['direct_jobs_per_s'] / p['supervisor_jobs_per_s']:.1f}x",
            ]
        )
    text_ += "\n" + print_table(
        "P1 purge throughput: supervisor (calls -> rows gone) vs the purge SQL alone",
        [
            "db",
            "jobs",
            "purged",
            "supervisor s",
            "jobs/s",
            "SQL alone s",
            "jobs/s",
            "SQL/supervisor",
        ],
        prow,
    )
    return text_


def gone_table(results: list[dict[str, Any]]) -> str:
    """Rows gone (request sent -> no jobs/job_events row left) vs the raw DELETE."""
    rows = []
    for r in results:
        for n, c in r["counts"].items():
            g = c["gone_ratio"]
            mark = "" if int(n) != 1000 else (" ok" if g["median"] <= TARGET_GONE else " MISS")
            rows.append(
                [
                    r["backend"],
                    f"{r['jobs']:,}",
                    n,
                    "yes" if r.get("folders", True) else "no",
                    _ms(c["raw"]),
                    _ms(c["api"]),
                    _ms(c["gone"]),
                    _ms(c["purge_after_call"]),
                    f"{g['median']:.2f}x ({g['min']:.2f}-{g['max']:.2f}){mark}",
                    " ".join(f"{x:.2f}" for x in c["gone_ratios"]),
                    _ms(c["files_gone"]),
                ]
            )
    return print_table(
        "P1 rows gone with job folders: request sent -> no jobs/job_events row left, vs the raw "
        "DELETE of jobs + events (ms; median (min-max))",
        [
            "db",
            "jobs",
            "ids",
            "folders",
            "raw DELETE ms",
            "API answer ms",
            "rows gone ms",
            "of which after the answer",
            "gone/raw (target <=1.5x @1000)",
            "gone/raw per rep",
            "folders gone ms",
        ],
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--counts", default=",".join(str(c) for c in COUNTS), help="ids per batch")
    ap.add_argument(
        "--purge-batches", type=int, default=5, help="x 1,000 ids for the throughput (0: skip)"
    )
    ap.add_argument("--no-folders", action="store_true", help="no job folders on disk (as before)")
    args = ap.parse_args(argv)
    counts = tuple(int(c) for c in args.counts.split(","))
    results = []
    for bs in seeded_stores(args.backends, args.sizes):
        # Retention off: the seeded jobs ended up to a year ago (the default keeps 30 days).
        with Server.mrs(bs, MRS_JOBS_RETENTION_DAYS="0") as server:
            results.append(
                run(
                    bs,
                    server,
                    reps=args.reps,
                    counts=counts,
                    purge_batches=args.purge_batches,
                    folders=not args.no_folders,
                )
            )
        clear_folders(bs)
    tables(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())


# ------------------------------------------------------------------------------------------
# Where the API's transaction goes: the same 1,000 ids through alternative SQL (in-process,
# server stopped so its supervisor does not purge in between). Prototypes, not in src/.
# ------------------------------------------------------------------------------------------
def sql_variants(bs: BenchStore, *, reps: int = 5, n: int = 1000) -> dict[str, Any]:
    """Median ms of one committed transaction for n ids, per variant:

    raw     DELETE FROM jobs WHERE id IN (...)                       (the P1 reference)
    service BatchDeleteService.delete() as the API runs it (SELECT ... FOR UPDATE in id order,
            UPDATE deleted_ms in chunks of 500, audit row), minus HTTP
    update1 one UPDATE ... WHERE <visible> AND id IN (...) RETURNING id, state + audit row
            (all-or-nothing by comparing the count and rolling back; no separate lock read)
    side    INSERT of n rows into a narrow side table (job_id PK, deleted_ms) + audit row:
            the "deleted" mark kept outside the wide, 4-index jobs row
    """
    from sqlalchemy import BigInteger, Column, MetaData, String, Table, update

    from mrs_jobs.services.batch_delete import BatchDeleteService
    from mrs_jobs.services.context import Caller
    from mrs_jobs.store.audit import record_audit

    assert bs.tenant is not None
    t = bs.tenant
    caller = Caller(
        project_id=t.project_id, credential_id=None, user_name="admin", request_id="bench"
    )
    svc = BatchDeleteService(bs.store, wake=lambda: None)
    side_md = MetaData()
    side = Table(
        "bench_deleted_side",
        side_md,
        Column("job_id", String(36), primary_key=True),
        Column("deleted_ms", BigInteger, nullable=False),
    )
    side_md.create_all(bs.store.engine)
    visible = (
        (jobs.c.project_id == t.project_id)
        & (jobs.c.cluster_id == t.cluster_id)
        & (jobs.c.deleted_ms == 0)
    )
    pool = IdPool(bs.job_ids, seed=11)

    def audit(conn: Any, ids: list[str]) -> None:
        record_audit(
            conn,
            at_ms=job_store.now_ms(),
            action="batch_delete",
            project_id=t.project_id,
            cluster_id=t.cluster_id,
            credential_id=None,
            request_id="bench",
            detail={"job_ids": ids, "count": len(ids)},
            outcome="deleted",
        )

    def unmark(ids: list[str]) -> None:
        with bs.store.write() as conn:
            for k in range(0, len(ids), 500):
                conn.execute(
                    update(jobs).where(jobs.c.id.in_(ids[k : k + 500])).values(deleted_ms=0)
                )

    def v_raw(ids: list[str]) -> float:
        saved = snapshot(bs, ids)
        return raw_delete(bs, ids, saved)

    def v_service(ids: list[str]) -> float:
        snapshot(bs, ids)  # same warm-up read as the others
        t0 = time.perf_counter()
        svc.delete(caller, t.cluster_id, ids)
        dt = time.perf_counter() - t0
        unmark(ids)
        return dt

    def v_update1(ids: list[str]) -> float:
        snapshot(bs, ids)
        t0 = time.perf_counter()
        with bs.store.write() as conn:
            rows = conn.execute(
                update(jobs)
                .where(visible, jobs.c.id.in_(ids))
                .values(deleted_ms=job_store.now_ms())
                .returning(jobs.c.id, jobs.c.state)
            ).all()
            assert len(rows) == len(ids)
            audit(conn, ids)
        dt = time.perf_counter() - t0
        unmark(ids)
        return dt

    def v_side(ids: list[str]) -> float:
        snapshot(bs, ids)
        t0 = time.perf_counter()
        with bs.store.write() as conn:
            conn.execute(insert(side), [{"job_id": i, "deleted_ms": 1} for i in ids])
            audit(conn, ids)
        dt = time.perf_counter() - t0
        with bs.store.write() as conn:
            conn.execute(side.delete())
        return dt

    variants = {"raw": v_raw, "service": v_service, "update1": v_update1, "side": v_side}
    out: dict[str, Any] = {"backend": bs.kind, "jobs": bs.seeded, "n": n, "variants": {}}
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(reps):
        for name, fn in variants.items():  # interleaved, fresh ids each time
            samples[name].append(fn(pool.take(n)))
    for name, xs in samples.items():
        out["variants"][name] = summarize(xs)
    side_md.drop_all(bs.store.engine)
    return out


def variant_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        raw = r["variants"]["raw"]["median"]
        for name, s in r["variants"].items():
            rows.append(
                [
                    r["backend"],
                    f"{r['jobs']:,}",
                    name,
                    f"{s['median'] * 1e3:.1f} ({s['min'] * 1e3:.1f}-{s['max'] * 1e3:.1f})",
                    f"{s['median'] / raw:.2f}x",
                ]
            )
    return print_table(
        "P1 where the time goes: one committed transaction for 1,000 ids, in-process (ms)",
        ["db", "jobs", "variant", "ms median (min-max)", "vs raw DELETE"],
        rows,
    )
