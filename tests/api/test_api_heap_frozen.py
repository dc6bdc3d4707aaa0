"""While the app runs, what start-up built is out of the cyclic collector's sight (its full
collections over the whole heap stalled every request ~100 ms under load: bench P16)."""

from __future__ import annotations

import gc


def test_the_start_up_heap_is_frozen_while_the_app_runs(api) -> None:
    before = gc.get_freeze_count()
    with api.client:  # the lifespan
        frozen = gc.get_freeze_count()
        assert api.client.get(f"{api.base}?limit=1").status_code == 202
    assert frozen > 10_000  # the modules, the app, the store's statements
    assert gc.get_freeze_count() == before == 0  # given back when it stops (tests run many)
