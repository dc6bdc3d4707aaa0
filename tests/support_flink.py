"""A fake Flink home (the layout pip gives apache-flink) and Flink JobSpecs for engine tests."""

from __future__ import annotations

from pathlib import Path

from mrs_jobs.engines.base import JobSpec

__all__ = ["DIST_CONFIG", "job", "make_fake_flink"]

DIST_CONFIG = """\
# Flink's shipped configuration (abridged)
env:
  java:
    opts:
      all: --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED
jobmanager:
  bind-host: localhost
  rpc:
    address: localhost
    port: 6123
taskmanager:
  numberOfTaskSlots: 1
parallelism:
  default: 1
rest:
  address: localhost
  # port: 8081
"""


def job(arguments: list[str], properties: dict[str, str] | None = None) -> JobSpec:
    return JobSpec(
        job_id="j1",
        job_type="Flink",
        job_name="t",
        arguments=arguments,
        properties=properties or {},
    )


def make_fake_flink(root: Path, *, venv: bool = True) -> Path:
    """A Flink home as pip lays it out: <venv>/lib/python3.11/site-packages/pyflink."""
    if venv:
        (root / "bin").mkdir(parents=True)
        (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
        python = root / "bin" / "python"
        python.write_text("#!/bin/sh\n")
        python.chmod(0o755)
        home = root / "lib" / "python3.11" / "site-packages" / "pyflink"
    else:
        home = root
    (home / "bin").mkdir(parents=True)
    (home / "lib").mkdir()
    (home / "conf").mkdir()
    flink = home / "bin" / "flink"
    flink.write_text("#!/bin/sh\nexit 0\n")
    flink.chmod(0o755)
    (home / "conf" / "config.yaml").write_text(DIST_CONFIG)
    (home / "conf" / "log4j-cli.properties").write_text("rootLogger.level = INFO\n")
    return home
