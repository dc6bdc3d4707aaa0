"""services/group_commit.py: items that arrive together share one write; each item gets its
own answer; a bad item never fails another."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from mrs_jobs.errors import StoreUnavailable
from mrs_jobs.services.group_commit import GroupCommit


class Writer:
    """Records each batch; answers item * 10, or the item's own error."""

    def __init__(self, *, first_takes: float = 0.0, bad: frozenset[int] = frozenset()) -> None:
        self.batches: list[list[int]] = []
        self.first_takes = first_takes
        self.bad = bad
        self.lock = threading.Lock()

    def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        with self.lock:
            self.batches.append(list(items))
            first = len(self.batches) == 1
        if first:
            time.sleep(self.first_takes)  # the others arrive while this one commits
        if len(items) > 1 and self.bad & set(items):
            raise RuntimeError("the whole statement failed")
        return [ValueError(f"refused {i}") if i in self.bad else i * 10 for i in items]


async def _run_all(group: GroupCommit, items: list[int]) -> list[object]:
    return await asyncio.gather(*(group.run(i) for i in items), return_exceptions=True)


def test_items_arriving_together_share_a_write_and_each_gets_its_answer() -> None:
    writer = Writer(first_takes=0.2)
    group = GroupCommit(writer, name="t-group")
    answers = asyncio.run(_run_all(group, list(range(40))))
    assert answers == [i * 10 for i in range(40)]
    assert sorted(i for batch in writer.batches for i in batch) == list(range(40))
    assert len(writer.batches) <= 3, writer.batches  # not one write per item


def test_a_refused_item_refuses_only_itself() -> None:
    writer = Writer(bad=frozenset({7}))
    # one batch holds both: the writer answers each item, 7 with its own error
    answers = asyncio.run(_run_all(GroupCommit(writer, name="t-group"), [7]))
    assert isinstance(answers[0], ValueError)


def test_a_batch_that_fails_as_a_whole_is_written_again_item_by_item() -> None:
    writer = Writer(first_takes=0.2, bad=frozenset({3}))
    answers = asyncio.run(_run_all(GroupCommit(writer, name="t-group"), list(range(10))))
    assert isinstance(answers[3], RuntimeError | ValueError)
    assert [a for i, a in enumerate(answers) if i != 3] == [i * 10 for i in range(10) if i != 3]
    assert any(len(b) > 1 and 3 in b for b in writer.batches)  # it did fail as a batch first


def test_an_unavailable_store_answers_every_item_without_retrying_each() -> None:
    calls: list[list[int]] = []

    def down(items: Sequence[int]) -> list[int | BaseException]:
        calls.append(list(items))
        time.sleep(0.1)
        raise StoreUnavailable()

    answers = asyncio.run(_run_all(GroupCommit(down, name="t-group"), list(range(12))))
    assert all(isinstance(a, StoreUnavailable) for a in answers)
    assert sum(len(c) for c in calls) == 12  # no item written twice


def test_items_from_several_event_loops_are_answered_on_their_own_loop() -> None:
    writer = Writer(first_takes=0.2)
    group = GroupCommit(writer, name="t-group")
    results: dict[int, list[object]] = {}

    def client(k: int) -> None:
        results[k] = asyncio.run(_run_all(group, [k * 100 + i for i in range(10)]))

    threads = [threading.Thread(target=client, args=(k,)) for k in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for k in (1, 2, 3):
        assert results[k] == [(k * 100 + i) * 10 for i in range(10)]


def test_a_cancelled_waiter_does_not_stop_the_others() -> None:
    writer = Writer(first_takes=0.3)
    group = GroupCommit(writer, name="t-group")

    async def scenario() -> list[object]:
        first = asyncio.ensure_future(group.run(1))
        await asyncio.sleep(0.05)
        cancelled = asyncio.ensure_future(group.run(2))
        others = [asyncio.ensure_future(group.run(i)) for i in (3, 4)]
        await asyncio.sleep(0.05)
        cancelled.cancel()
        return [await first, *[await o for o in others]]

    assert asyncio.run(scenario()) == [10, 30, 40]
    assert 2 in [i for b in writer.batches for i in b]  # written all the same, as a sync call is


@pytest.mark.parametrize("n", [1, 200])
def test_batches_never_exceed_their_limit(n: int) -> None:
    writer = Writer(first_takes=0.2)
    group = GroupCommit(writer, name="t-group", max_batch=16)
    assert asyncio.run(_run_all(group, list(range(n)))) == [i * 10 for i in range(n)]
    assert max(len(b) for b in writer.batches) <= 16
