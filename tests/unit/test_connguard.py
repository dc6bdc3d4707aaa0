"""The connection guard's choices: which connection closes when room is needed (issue 20)."""

from __future__ import annotations

from mrs_jobs.api.connguard import ConnectionGuard, parse_networks


class Conn:
    def __init__(self, guard: ConnectionGuard, peer: str, name: str) -> None:
        self.peer, self.name, self.guard = peer, name, guard
        self.was_shed = False

    def shed(self) -> None:
        self.was_shed = True

    def lost(self) -> None:
        self.guard.closed(self)


def _open(guard: ConnectionGuard, peer: str, name: str) -> Conn:
    conn = Conn(guard, peer, name)
    guard.opened(conn)
    return conn


def test_an_address_past_its_cap_loses_its_oldest_waiting_connection() -> None:
    guard = ConnectionGuard(max_connections=100, per_address=3, grace=0)
    a = [_open(guard, "10.0.0.1", f"a{i}") for i in range(3)]
    other = _open(guard, "10.0.0.2", "b")
    guard.busy(a[0])  # a request in progress: never a candidate
    a.append(_open(guard, "10.0.0.1", "a3"))
    assert not any(c.was_shed for c in a)  # three waiting: within the cap
    a.append(_open(guard, "10.0.0.1", "a4"))
    assert [c.name for c in a if c.was_shed] == ["a1"]
    assert not other.was_shed and guard.waiting("10.0.0.1") == 3
    a[1].lost()
    assert guard.open == 5


def test_never_served_connections_go_before_idle_ones() -> None:
    guard = ConnectionGuard(max_connections=100, per_address=2, grace=0)
    served = _open(guard, "10.0.0.1", "served")
    guard.busy(served)
    guard.idle(served)  # its response ended, it waits for the next request
    fresh = _open(guard, "10.0.0.1", "fresh")
    _open(guard, "10.0.0.1", "new")
    assert fresh.was_shed and not served.was_shed


def test_when_full_the_oldest_waiting_connection_anywhere_makes_room() -> None:
    guard = ConnectionGuard(max_connections=4, per_address=0)
    busy = _open(guard, "10.0.0.1", "busy")
    guard.busy(busy)
    idle = _open(guard, "10.0.0.2", "idle")
    guard.busy(idle)
    guard.idle(idle)
    waiting = [_open(guard, f"10.0.1.{i}", f"w{i}") for i in range(2)]
    newcomer = _open(guard, "10.0.2.1", "new")
    assert waiting[0].was_shed and guard.open == 4
    _open(guard, "10.0.2.2", "new2")
    assert waiting[1].was_shed
    _open(guard, "10.0.2.3", "new3")
    assert newcomer.was_shed  # the oldest never-served one left
    for conn in (newcomer, waiting[0], waiting[1]):
        conn.lost()  # a shed connection is counted once
    assert guard.open == 4 and not idle.was_shed


def test_busy_connections_are_never_closed_and_the_newcomer_stays() -> None:
    guard = ConnectionGuard(max_connections=2, per_address=1, grace=0)
    conns = []
    for i in range(2):
        conns.append(_open(guard, "10.0.0.1", f"c{i}"))
        guard.busy(conns[-1])
    extra = _open(guard, "10.0.0.1", "extra")  # uvicorn answers its request with 503
    assert guard.open == 3 and not any(c.was_shed for c in [*conns, extra])


def test_trusted_proxies_are_exempt_from_the_address_cap() -> None:
    guard = ConnectionGuard(
        max_connections=100,
        per_address=1,
        exempt=parse_networks("127.0.0.1, 10.9.0.0/16"),
        grace=0,
    )
    proxied = [_open(guard, "10.9.3.4", f"p{i}") for i in range(5)]
    assert not any(c.was_shed for c in proxied)
    local = [_open(guard, "127.0.0.2", f"l{i}") for i in range(2)]
    assert local[0].was_shed
    assert parse_networks("") == []


def test_a_burst_from_one_address_is_not_cut_while_its_heads_are_on_the_way() -> None:
    now = [100.0]
    guard = ConnectionGuard(max_connections=1000, per_address=2, clock=lambda: now[0])
    burst = [_open(guard, "127.0.0.1", f"b{i}") for i in range(50)]  # all within the grace
    assert not any(c.was_shed for c in burst)
    for conn in burst[:45]:
        guard.busy(conn)  # their heads arrived: busy connections are not counted
    now[0] += 1.5
    _open(guard, "127.0.0.1", "late")  # the five still waiting are old now: down to the cap
    assert [c.name for c in burst if c.was_shed] == ["b45", "b46", "b47", "b48"]
    assert guard.waiting("127.0.0.1") == 2


def test_closing_is_logged_at_most_every_report_period(caplog) -> None:
    now = [0.0]
    guard = ConnectionGuard(max_connections=1, per_address=0, clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="mrs_jobs.api.connguard"):
        for i in range(20):
            _open(guard, f"10.0.0.{i}", f"c{i}")
        now[0] += 10.0
        _open(guard, "10.0.1.1", "later")
    records = [r for r in caplog.records if r.getMessage() == "connections.shed"]
    assert [r.full for r in records] == [1, 19]  # type: ignore[attr-defined]


def test_shed_connections_are_counted_by_cause_for_metrics() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    guard = ConnectionGuard(max_connections=3, per_address=2, grace=0)
    registry = CollectorRegistry()
    registry.register(guard.collector())
    for i in range(3):
        _open(guard, "10.0.0.1", f"a{i}")  # the third sheds the first: address_cap
    _open(guard, "10.0.0.2", "b")
    _open(guard, "10.0.0.3", "c")  # past max_connections: full
    text = generate_latest(registry).decode()
    assert 'mrs_jobs_connections_shed_total{cause="address_cap"} 1.0' in text
    assert 'mrs_jobs_connections_shed_total{cause="full"} 1.0' in text
    assert f"mrs_jobs_connections_open {float(guard.open)}" in text
