"""The security tests use the API tests' ``api`` fixture and helpers (one definition of each)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_API = Path(__file__).resolve().parent.parent / "api"
if str(_API) not in sys.path:
    sys.path.insert(0, str(_API))

_spec = importlib.util.spec_from_file_location("api_conftest_for_security", _API / "conftest.py")
assert _spec is not None and _spec.loader is not None
_mod = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _mod
_spec.loader.exec_module(_mod)

api = _mod.api
Api = _mod.Api
