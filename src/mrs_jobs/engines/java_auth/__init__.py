"""The Spark Thrift Server's CUSTOM authenticator (``MrsJobsAuthenticator.java``), prebuilt.

The jar is committed so that a machine with a JRE only can run it; ``scripts/build-java-auth``
rebuilds it from the source (:mod:`mrs_jobs.engines.java_auth.build`). The class accepts one
user whose password is the content of a file; both are named by system properties of the
server's JVM, so the secret itself never appears on a command line.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["AUTH_CLASS", "AUTH_JAR", "AUTH_SOURCE", "FILE_PROPERTY", "USER_PROPERTY"]

_HERE = Path(__file__).resolve().parent
AUTH_SOURCE = _HERE / "MrsJobsAuthenticator.java"
AUTH_JAR = _HERE / "mrs-jobs-auth.jar"
AUTH_CLASS = "mrsjobs.auth.MrsJobsAuthenticator"
USER_PROPERTY = "mrs.jobs.sql.user"
FILE_PROPERTY = "mrs.jobs.sql.password.file"
