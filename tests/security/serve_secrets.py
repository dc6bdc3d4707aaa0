"""``mrs-jobs serve`` with every real engine, except that SparkSubmit jobs whose first argument
is "fake" run tests/fake_engine.py (as in tests/crash/serve_fake.py). Used by
test_secrets_never_shown.py: cheap jobs next to a real DistCp run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "crash"))

from serve_fake import with_fake  # noqa: E402

from mrs_jobs.engines.registry import EngineRegistry  # noqa: E402
from mrs_jobs.server import run_server  # noqa: E402
from mrs_jobs.settings import get_settings  # noqa: E402

_real = EngineRegistry.from_settings.__func__  # type: ignore[attr-defined]


def _patched(cls, settings, box=None, endpoint=None):  # type: ignore[no-untyped-def]
    return with_fake(_real(cls, settings, box, endpoint))


if __name__ == "__main__":
    EngineRegistry.from_settings = classmethod(_patched)  # type: ignore[method-assign,assignment]
    sys.exit(run_server(get_settings()))
