"""Settings that would silently break a promise are refused at start, with the variable named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mrs_jobs.settings import Settings


def test_a_zero_sql_row_cap_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """0 rows kept would drop a failed statement's record too (sql-result shows the error)."""
    monkeypatch.setenv("MRS_JOBS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MRS_JOBS_SQL_RESULT_ROW_CAP", "0")
    with pytest.raises(ValidationError, match="sql_result_row_cap"):
        Settings()
    monkeypatch.setenv("MRS_JOBS_SQL_RESULT_ROW_CAP", "1")
    assert Settings().sql_result_row_cap == 1
