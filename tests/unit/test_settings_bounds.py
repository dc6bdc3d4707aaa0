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


def test_a_bad_setting_exits_with_one_line_naming_it_and_never_a_secret(monkeypatch) -> None:
    import pytest

    from mrs_jobs.settings import _setting_error, get_settings

    monkeypatch.setenv("MRS_JOBS_WORKERS", "0")
    monkeypatch.setenv("MRS_JOBS_PORT", "abc")
    with pytest.raises(SystemExit) as exc:
        get_settings()
    text = str(exc.value)
    assert "MRS_JOBS_WORKERS: Input should be greater than or equal to 1 (got '0')" in text
    assert "MRS_JOBS_PORT:" in text and "'abc'" in text
    assert "Traceback" not in text and len(text.splitlines()) == 3
    # A secret setting's refused value is never printed.
    secret = _setting_error({"loc": ("metrics_token",), "msg": "bad", "input": "s3cr3t"})
    assert secret == "MRS_JOBS_METRICS_TOKEN: bad"
