"""file:// URLs in job arguments: one rule for every engine."""

from __future__ import annotations

import pytest

from mrs_jobs.engines.base import EngineRefused
from mrs_jobs.engines.paths import file_url_path


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("file:///data/app.py", "/data/app.py"),
        ("file://localhost/data/app.py", "/data/app.py"),
        ("file:///data/my%20app.py", "/data/my app.py"),
    ],
)
def test_absolute_file_urls(url: str, path: str) -> None:
    assert file_url_path(url) == path


@pytest.mark.parametrize("url", ["file://data/app.py", "file://otherhost/x", "file://"])
def test_relative_or_remote_host_file_urls_are_refused(url: str) -> None:
    with pytest.raises(EngineRefused, match="absolute local path"):
        file_url_path(url)
