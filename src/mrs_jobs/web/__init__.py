"""The web console: a static page that calls the public MRS v2 API with a token."""

from __future__ import annotations

__all__: list[str] = []
