"""``mrs-jobs supervise`` (the real CLI command) with tests/fake_engine.py as its only engine.

The engine choice is patched in here, in the test tree; the service has no test hooks.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support_supervisor import FakeEngine  # noqa: E402

from mrs_jobs.cli.main import app  # noqa: E402
from mrs_jobs.engines.registry import EngineRegistry  # noqa: E402

if __name__ == "__main__":
    EngineRegistry.from_settings = classmethod(  # type: ignore[method-assign]
        lambda cls, settings, box=None: cls([FakeEngine()])
    )
    app(["supervise", *sys.argv[1:]])
