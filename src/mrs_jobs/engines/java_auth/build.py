"""Build ``mrs-jobs-auth.jar`` from ``MrsJobsAuthenticator.java`` (``scripts/build-java-auth``).

``javac --release 11`` (a user machine may have an older JRE than the build's JDK) against
pyspark's jars, which hold Hive's ``PasswdAuthenticationProvider``. The jar is written with
fixed timestamps and the compiler's version in its manifest, so the same JDK rebuilds the same
bytes and a test can tell whether a byte comparison is meaningful.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from mrs_jobs.engines.java_auth import AUTH_CLASS, AUTH_JAR, AUTH_SOURCE

__all__ = ["CLASS_ENTRY", "build_jar", "compile_class", "javac_version", "main"]

CLASS_ENTRY = AUTH_CLASS.replace(".", "/") + ".class"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def javac_version(javac: str = "javac") -> str:
    """``javac -version`` as it prints it, e.g. ``javac 17.0.15``."""
    done = subprocess.run([javac, "-version"], capture_output=True, text=True, check=True)
    return (done.stdout or done.stderr).strip()


def compile_class(spark_home: str, source: Path = AUTH_SOURCE, javac: str = "javac") -> bytes:
    """The class file compiled from ``source`` against the Spark home's jars."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                javac,
                "--release",
                "11",
                "-nowarn",
                "-cp",
                str(Path(spark_home) / "jars" / "*"),
                "-d",
                out,
                str(source),
            ],
            check=True,
        )
        return (Path(out) / CLASS_ENTRY).read_bytes()


def build_jar(class_bytes: bytes, compiler: str, jar: Path = AUTH_JAR) -> None:
    """Write the jar: a manifest naming the compiler, then the class (fixed timestamps)."""
    manifest = f"Manifest-Version: 1.0\r\nCreated-By: {compiler}\r\n\r\n".encode()
    tmp = jar.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in (("META-INF/MANIFEST.MF", manifest), (CLASS_ENTRY, class_bytes)):
            info = zipfile.ZipInfo(name, _EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    tmp.replace(jar)


def main(argv: list[str] | None = None) -> int:
    from mrs_jobs.engines.java import find_spark_home

    javac = shutil.which("javac")
    spark_home = find_spark_home(None)
    if javac is None or spark_home is None:
        print("build-java-auth needs a JDK (javac) and pyspark", file=sys.stderr)
        return 2
    compiler = javac_version(javac)
    build_jar(compile_class(spark_home, javac=javac), compiler)
    print(f"wrote {AUTH_JAR} ({compiler})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
