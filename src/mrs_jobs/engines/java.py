"""Locate the JVM and the Spark distribution the engines launch (None when not found)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

__all__ = ["find_java_home", "find_spark_home", "spark_submit_path"]


def _is_java_home(path: Path) -> bool:
    java = path / "bin" / "java"
    return java.is_file() and os.access(java, os.X_OK)


def find_java_home(setting: str | None = None) -> str | None:
    """JAVA_HOME: the setting if given, else env ``JAVA_HOME``, else ``java`` on PATH resolved.

    The PATH lookup follows symlinks (``/usr/bin/java`` → ``/etc/alternatives/java`` →
    ``/usr/lib/jvm/<jdk>/bin/java``) and returns the directory above ``bin``. A setting or
    environment value that does not contain ``bin/java`` is skipped, not trusted blindly.
    """
    for candidate in (setting, os.environ.get("JAVA_HOME")):
        if candidate and _is_java_home(Path(candidate)):
            return str(Path(candidate))
    java = shutil.which("java")
    if java is None:
        return None
    real = Path(java).resolve()
    home = real.parent.parent
    if real.parent.name == "bin" and _is_java_home(home):
        return str(home)
    return None


def find_spark_home(setting: str | None = None) -> str | None:
    """SPARK_HOME: the setting if given, else the installed ``pyspark`` package directory.

    The pip distribution of pyspark is a complete Spark home (``bin/spark-submit``, ``jars/``).
    pyspark is located with :func:`importlib.util.find_spec`, so it is never imported here.
    """
    if setting:
        return str(Path(setting)) if (Path(setting) / "bin" / "spark-submit").is_file() else None
    try:
        spec = importlib.util.find_spec("pyspark")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if (Path(location) / "bin" / "spark-submit").is_file():
            return str(Path(location))
    return None


def spark_submit_path(spark_home: str) -> str:
    """The ``spark-submit`` script of a Spark home."""
    return str(Path(spark_home) / "bin" / "spark-submit")
