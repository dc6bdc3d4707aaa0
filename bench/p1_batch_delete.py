"""P1: batch delete through the HTTP API vs. the raw SQL delete of the same rows.

For each batch size (1, 10, 100, 1,000 ids) and repetition, a fresh random set S of seeded
finished jobs is taken, then (warm cache for both: the rows are read first)
  raw:  ``DELETE FROM jobs WHERE id IN (S)`` in one transaction, timed BEGIN..COMMIT in this
        process over an open pooled connection; the rows are then put back (untimed);
  api:  ``POST .../job-executions/batch-delete {"job_id_list": S}``, pre-signed, timed as the
        client sees it on a keep-alive connection (signature checked by the server);
  then we wait until the supervisor has purged S (rows gone), so passes never overlap.
The figure is api/raw per repetition (median, min-max).

Purge throughput, separately: 5 x 1,000 ids are batch-deleted back to back and the time until
the supervisor has removed all their rows (jobs + events) is measured; the "physical limit"
is ``store.jobs.purge()`` (the purge's own SQL) run directly on another 5,000 ids.

Target: api <= 2x raw at 1,000 ids, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import random
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

_RAW_DELETE = text("DELETE FROM jobs WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))
_COUNT_LEFT = text("SELECT count(*) FROM jobs WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)


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


def raw_delete(bs: BenchStore, ids: list[str], saved: tuple[list[dict], list[dict]]) -> float:
    """Time one ``DELETE FROM jobs WHERE id IN (...)`` transaction; the rows are put back.

    ``saved`` was just read from these rows, so their pages are as warm as for the API call."""
    t0 = time.perf_counter()
    with bs.store.write() as conn:
        res = conn.execute(_RAW_DELETE, {"ids": ids})
    dt = time.perf_counter() - t0
    assert res.rowcount == len(ids), res.rowcount
    with bs.store.write() as conn:
        conn.execute(insert(jobs), saved[0])
    return dt


def wait_gone(bs: BenchStore, ids: list[str], timeout: float = 120.0) -> float:
    """Seconds until none of ``ids`` has a jobs row any more (the supervisor's purge)."""
    t0 = time.perf_counter()
    while True:
        with bs.store.read() as conn:
            left = 0
            for k in range(0, len(ids), 900):
                left += conn.execute(_COUNT_LEFT, {"ids": ids[k : k + 900]}).scalar_one()
        if left == 0:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"{left} deleted jobs still not purged after {timeout}s")
        time.sleep(0.005)


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
) -> dict[str, Any]:
    assert bs.tenant is not None
    api = Api(server, bs.tenant)
    pool = IdPool(bs.job_ids)
    out: dict[str, Any] = {"backend": bs.kind, "jobs": bs.seeded, "counts": {}}

    # Warm-up: one of each, not recorded.
    ids = pool.take(10)
    saved = snapshot(bs, ids)
    raw_delete(bs, ids, saved)
    status, body, _ = api.call("POST", "/batch-delete", body={"job_id_list": ids})
    check(status, 202, body, "batch-delete")
    wait_gone(bs, ids)
    restore(bs, saved)

    for n in () if only_purge else counts:
        api_s, raw_s, ratios, purge_s = [], [], [], []
        for _ in range(reps):
            ids = pool.take(n)
            saved = snapshot(bs, ids)
            r = raw_delete(bs, ids, saved)
            req = api.prepare("POST", "/batch-delete", body={"job_id_list": ids})
            status, body, a = api.send(req)
            check(status, 202, body, "batch-delete")
            purge_s.append(wait_gone(bs, ids))
            restore(bs, saved)
            api_s.append(a)
            raw_s.append(r)
            ratios.append(a / r)
        out["counts"][n] = {
            "api": summarize(api_s),
            "raw": summarize(raw_s),
            "ratio": summarize(ratios),
            "purge_after_call": summarize(purge_s),
        }
        log(
            f"P1 {bs.kind} {bs.seeded:,} n={n}: api {summarize(api_s)['median'] * 1e3:.1f} ms, "
            f"raw {summarize(raw_s)['median'] * 1e3:.1f} ms"
        )

    # Purge throughput: the supervisor's, from the first call to the last row gone.
    all_ids = pool.take(1000 * purge_batches)
    batches = [all_ids[k : k + 1000] for k in range(0, len(all_ids), 1000)]
    saved = snapshot(bs, all_ids)
    n_events = len(saved[1])
    reqs = [api.prepare("POST", "/batch-delete", body={"job_id_list": b}) for b in batches]
    t0 = time.perf_counter()
    for req in reqs:
        status, body, _ = api.send(req)
        check(status, 202, body, "batch-delete")
    calls = time.perf_counter() - t0
    gone = wait_gone(bs, all_ids) + calls
    restore(bs, saved)
    # The physical limit: the purge's own SQL (store.jobs.purge) on the same jobs, restored.
    t0 = time.perf_counter()
    for k in range(0, len(all_ids), 500):  # as the supervisor: <= 500 jobs per transaction
        with bs.store.write() as conn:
            job_store.purge(conn, all_ids[k : k + 500])
    direct = time.perf_counter() - t0
    restore(bs, saved)
    out["purge"] = {
        "jobs": len(all_ids),
        "events": n_events,
        "supervisor_s": gone,
        "supervisor_jobs_per_s": len(all_ids) / gone,
        "direct_s": direct,
        "direct_jobs_per_s": len(all_ids) / direct,
    }
    api.close()
    return out


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
        "P1 batch delete: API call vs raw DELETE of the same rows (ms; median (min-max))",
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args(argv)
    results = []
    for bs in seeded_stores(args.backends, args.sizes):
        with Server.mrs(bs) as server:
            results.append(run(bs, server, reps=args.reps))
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
