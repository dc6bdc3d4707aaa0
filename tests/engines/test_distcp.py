"""DistCpEngine.build()/observe() and the copy runner, run as a real subprocess.

Object store cases use an in-process moto S3 server on a free loopback port with IAM
authentication on (so a wrong secret key is refused as by a real store).
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support_s3 import S3Store as Store
from support_s3 import running_s3

from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec, LaunchSpec
from mrs_jobs.engines.distcp import (
    CONFIG_FILE,
    PROGRESS_FILE,
    DistCpEngine,
    app_id_for,
    parse_distcp_arguments,
    progress_from,
)

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

JOB_ID = "0f1e2d3c-4b5a-4697-8877-665544332211"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    with running_s3("distcp") as s3:
        yield s3


@pytest.fixture
def bucket(store: Store) -> str:
    name = f"d-{uuid.uuid4().hex[:12]}"
    store.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def cluster(root: Path) -> ClusterSpec:
    # Copies read and write under one root: it is an output root (readable and writable).
    return ClusterSpec(cluster_id="c1", input_roots=(str(root),), output_roots=(str(root),))


def job(arguments: list[str], properties: dict[str, str] | None = None) -> JobSpec:
    return JobSpec(
        job_id=JOB_ID,
        job_type="DistCp",
        job_name="copy",
        arguments=arguments,
        properties=properties or {},
    )


@dataclass
class Run:
    launch: LaunchSpec
    rc: int
    stdout: str
    stderr: str

    def summary(self) -> dict[str, float]:
        m = re.search(r"^DistCp summary: (.*)$", self.stdout, re.M)
        assert m, self.stdout + self.stderr
        return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


_workdirs = iter(range(1_000_000))


def run(
    args: list[str],
    cluster: ClusterSpec,
    tmp_path: Path,
    properties: dict[str, str] | None = None,
) -> Run:
    workdir = tmp_path / f"work{next(_workdirs)}"
    launch = DistCpEngine().build(job(args, properties), cluster, workdir)
    p = subprocess.run(
        launch.argv, env=launch.env, cwd=launch.cwd, capture_output=True, text=True, timeout=60
    )
    return Run(launch, p.returncode, p.stdout, p.stderr)


def tree(base: Path) -> dict[str, bytes | None]:
    """relative path -> content (None for a directory)."""
    out: dict[str, bytes | None] = {}
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base).as_posix()
        out[rel] = None if p.is_dir() else p.read_bytes()
    return out


def make_tree(base: Path) -> dict[str, bytes | None]:
    files = {
        "top.txt": b"top\n",
        "a/one.bin": os.urandom(3000),
        "a/b/c/deep.txt": b"deep " * 100,
        "a/b/two.txt": b"",
        "z.dat": os.urandom(70_000),
    }
    for rel, data in files.items():
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (base / "empty" / "inner").mkdir(parents=True)
    return tree(base)


# ---------------------------------------------------------------------- arguments


def test_parse_arguments():
    opts, srcs, tgt = parse_distcp_arguments(["-update", "-m", "8", "/a", "/b", "/t"])
    assert (opts.update, opts.overwrite, opts.maps, srcs, tgt) == (
        True,
        False,
        8,
        ["/a", "/b"],
        "/t",
    )
    opts, srcs, tgt = parse_distcp_arguments(["/a", "obs://bkt/t"])
    assert (opts.maps, opts.bandwidth, srcs, tgt) == (4, None, ["/a"], "obs://bkt/t")
    assert parse_distcp_arguments(["-bandwidth", "2.5", "/a", "/t"])[0].bandwidth == 2.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "at least one source"),
        (["/a"], "at least one source"),
        (["-update", "/a"], "at least one source"),
        (["-delete", "-update", "/a", "/t"], "-delete is not supported"),
        (["-update", "-overwrite", "/a", "/t"], "mutually exclusive"),
        (["-m", "0", "/a", "/t"], "between 1 and"),
        (["-m", "x", "/a", "/t"], "whole number"),
        (["-m"], "needs a value"),
        (["-bandwidth", "-1", "/a", "/t"], "positive"),
        (["-pugp", "/a", "/t"], "not supported"),
        (["-i", "/a", "/t"], "not supported"),
        (["--frobnicate", "/a", "/t"], "unknown DistCp option"),
        (["/a", "-update", "/t"], "before the paths"),
        (["/a\x00", "/t"], "control characters"),
    ],
)
def test_argument_refusals(args: list[str], message: str, tmp_path: Path):
    with pytest.raises(EngineRefused, match=re.escape(message)):
        DistCpEngine().build(job(args), ClusterSpec("c1"), tmp_path / "w")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["relative/path", "/t"], "must be absolute"),
        (["/a/../etc", "/t"], "'..' is not allowed"),
        (["/a", "file:///t/../x"], "'..' is not allowed"),
        (["obs://bkt/a/../b", "/t"], "'..' is not allowed"),
        (["hdfs://nn:8020/a", "/t"], "libhdfs"),
        (["http://example.com/a", "/t"], "unsupported URL scheme"),
        (["/data/src", "/data/src/sub"], "no output roots"),  # unrooted: no local target
        (["obs://bkt/x", "obs://bkt/x"], "inside it"),
    ],
)
def test_path_refusals(args: list[str], message: str, tmp_path: Path):
    with pytest.raises(EngineRefused, match=re.escape(message)):
        DistCpEngine().build(job(args), ClusterSpec("c1"), tmp_path / "w")


def test_input_roots_enforced_for_sources_and_local_target(
    root: Path, cluster: ClusterSpec, tmp_path: Path
):
    outside = tmp_path / "outside"
    (outside / "d").mkdir(parents=True)
    (outside / "secret.txt").write_text("nope")
    (root / "src").mkdir()
    engine = DistCpEngine()
    w = tmp_path / "w"
    with pytest.raises(EngineRefused, match="source .* not under an allowed input root"):
        engine.build(job([str(outside / "secret.txt"), str(root / "t")]), cluster, w)
    with pytest.raises(EngineRefused, match="target .* not under an allowed output root"):
        engine.build(job([str(root / "src"), str(outside / "t")]), cluster, w)
    with pytest.raises(EngineRefused, match="target .* not under an allowed output root"):
        engine.build(job([str(root / "src"), f"file://{outside}/t"]), cluster, w)
    # Symlinks inside a root that point out of it are resolved and refused.
    (root / "link-file").symlink_to(outside / "secret.txt")
    (root / "link-dir").symlink_to(outside / "d")
    with pytest.raises(EngineRefused, match="source"):
        engine.build(job([str(root / "link-file"), str(root / "t")]), cluster, w)
    with pytest.raises(EngineRefused, match="target"):
        engine.build(job([str(root / "src"), str(root / "link-dir" / "t")]), cluster, w)
    # Object store paths are not local: no root applies.
    engine.build(job([str(root / "src"), "obs://bkt/t"]), cluster, w)


def test_targets_only_under_output_roots(tmp_path: Path):
    """Reads under input or output roots; every local target (plain, -update, -overwrite)
    under an output root; a cluster with input roots only has no local target."""
    inp, out = tmp_path / "in", tmp_path / "out"
    (inp / "src").mkdir(parents=True)
    (inp / "src" / "f.txt").write_text("data")
    out.mkdir()
    split = ClusterSpec("c1", input_roots=(str(inp),), output_roots=(str(out),))
    read_only = ClusterSpec("c1", input_roots=(str(inp),))
    engine = DistCpEngine()
    w = tmp_path / "w"
    for opts in ([], ["-update"], ["-overwrite"]):
        args = [*opts, str(inp / "src"), str(inp / "copy")]
        with pytest.raises(EngineRefused, match="target .* not under an allowed output root"):
            engine.build(job(args), split, w)
        with pytest.raises(EngineRefused, match="target .* no output roots"):
            engine.build(job(args), read_only, w)
    # An output root is readable too: a copy from it back into it.
    r = run([str(inp / "src"), str(out / "copy")], split, tmp_path)
    assert r.rc == 0, r.stderr
    assert (out / "copy" / "f.txt").read_text() == "data"
    r = run(["-update", str(out / "copy"), str(out / "again")], split, tmp_path)
    assert r.rc == 0, r.stderr
    assert (out / "again" / "f.txt").read_text() == "data"
    cfg = json.loads((Path(r.launch.cwd) / CONFIG_FILE).read_text())
    assert cfg["input_roots"] == [str(inp.resolve()), str(out.resolve())]
    assert cfg["output_roots"] == [str(out.resolve())] and cfg["rooted"] is True


def test_the_service_files_are_never_copied(tmp_path: Path):
    """Sources and targets at, in or above a forbidden path are refused with or without roots;
    a file symlink in a source tree that points into one is skipped by the copy."""
    svc = tmp_path / "svc"
    svc.mkdir()
    (svc / "secret.key").write_text("KEY-MATERIAL")
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_text("ok")
    (src / "key").symlink_to(svc / "secret.key")
    (tmp_path / "to-svc").symlink_to(svc, target_is_directory=True)
    unrooted = ClusterSpec("c1", forbidden=(str(svc),))
    rooted = ClusterSpec("c1", output_roots=(str(tmp_path),), forbidden=(str(svc),))
    engine = DistCpEngine()
    w = tmp_path / "w"
    for cluster in (unrooted, rooted):
        for args in (
            [str(svc), str(tmp_path / "loot")],
            [str(svc / "secret.key"), str(tmp_path / "loot")],
            [f"file://{svc}/secret.key", str(tmp_path / "loot")],
            [str(tmp_path), "obs://bkt/loot"],  # a directory holding the service's files
            [str(src / "key"), str(tmp_path / "loot")],  # a symlink to them
            ["-overwrite", str(src), str(svc / "jobs")],
            [str(src), str(tmp_path / "to-svc" / "x")],  # a target through a symlink
        ):
            with pytest.raises(EngineRefused, match="reaches the service's own files"):
                engine.build(job(args), cluster, w)
    r = run([str(src), str(tmp_path / "copy")], rooted, tmp_path)
    assert r.rc == 0, r.stderr
    assert tree(tmp_path / "copy") == {"ok.txt": b"ok"}
    assert "skipped symlink" in r.stderr and "KEY-MATERIAL" not in r.stdout + r.stderr


@pytest.mark.parametrize("side", ["source", "target"])
def test_the_runner_checks_again(tmp_path: Path, side: str):
    """A path swapped for a symlink into the service's files between build and copy."""
    svc = tmp_path / "svc"
    (svc / "jobs").mkdir(parents=True)
    (svc / "secret.key").write_text("KEY-MATERIAL")
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "f.txt").write_text("f")
    dst.mkdir()
    cluster = ClusterSpec("c1", output_roots=(str(tmp_path),), forbidden=(str(svc),))
    launch = DistCpEngine().build(job([str(src), str(dst)]), cluster, tmp_path / "w")
    swapped = src if side == "source" else dst
    for p in sorted(swapped.rglob("*"), reverse=True):
        p.unlink()
    swapped.rmdir()
    swapped.symlink_to(svc, target_is_directory=True)
    p = subprocess.run(
        launch.argv, env=launch.env, cwd=launch.cwd, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 1
    assert f"{side} {swapped} is not an allowed path" in p.stderr
    assert sorted(x.name for x in svc.iterdir()) == ["jobs", "secret.key"]
    assert "KEY-MATERIAL" not in p.stdout + p.stderr


def test_build_launch_env_config_and_notes(
    store: Store, root: Path, cluster: ClusterSpec, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "service-own-secret")
    monkeypatch.setenv("MRS_CANARY", "leak")
    (root / "src").mkdir()
    workdir = tmp_path / "w"
    launch = DistCpEngine().build(
        job(["-update", "-m", "2", str(root / "src"), "obs://bkt/dst"], store.props()),
        cluster,
        workdir,
    )
    assert launch.argv[1:] == [
        "-m",
        "mrs_jobs.engines.runners.distcp",
        str(workdir.resolve() / CONFIG_FILE),
    ]
    assert launch.cwd == str(workdir.resolve())
    assert "MRS_CANARY" not in launch.env and "AWS_SECRET_ACCESS_KEY" not in launch.env
    assert launch.env["HOME"] == str(workdir.resolve())
    assert set(launch.env) <= {
        "PATH",
        "LANG",
        "HOME",
        "TMPDIR",
        "PYTHONPATH",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "AWS_EC2_METADATA_DISABLED",
    }
    cfg_path = workdir / CONFIG_FILE
    assert stat.S_IMODE(cfg_path.stat().st_mode) == 0o600
    cfg = json.loads(cfg_path.read_text())
    assert cfg["s3"]["secret_key"] == store.secret_key  # only here
    assert cfg["options"] == {"overwrite": False, "update": True, "maps": 2, "bandwidth_mb": None}
    assert cfg["target"] == {
        "kind": "s3",
        "uri": "obs://bkt/dst",
        "path": "bkt/dst",
        "name": "dst",
        "root": False,
    }
    shown = json.dumps([launch.argv, launch.env, launch.notes])
    assert store.secret_key not in shown and store.access_key not in shown
    assert any("fs.obs.secret.key" in n for n in launch.notes)  # named, not valued
    assert any(store.endpoint in n for n in launch.notes)
    # Without object store paths no credentials are written at all.
    launch = DistCpEngine().build(
        job([str(root / "src"), str(root / "t")], store.props()), cluster, tmp_path / "w2"
    )
    assert json.loads((tmp_path / "w2" / CONFIG_FILE).read_text())["s3"] is None


def test_runner_importable_from_the_built_env(root: Path, cluster: ClusterSpec, tmp_path: Path):
    (root / "src").mkdir()
    launch = DistCpEngine().build(job([str(root / "src"), str(root / "t")]), cluster, tmp_path)
    p = subprocess.run(
        [launch.argv[0], "-c", "import mrs_jobs.engines.runners.distcp, pyarrow.fs"],
        env=launch.env,
        cwd=launch.cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr


# ------------------------------------------------------------------------ local copies


def test_local_tree_copy_semantics(root: Path, cluster: ClusterSpec, tmp_path: Path):
    src = root / "src"
    expected = make_tree(src)
    # Target does not exist: it becomes the copy.
    r = run([str(src), str(root / "out")], cluster, tmp_path)
    assert r.rc == 0, r.stderr
    assert tree(root / "out") == expected
    s = r.summary()
    assert s["files_copied"] == 5
    assert s["bytes_copied"] == sum(len(v) for v in expected.values() if v is not None)
    assert not [p for p in (root / "out").rglob(".distcp.*")]
    # Target exists (no option): Hadoop puts the source under target/<name>.
    r = run([str(src), str(root / "out")], cluster, tmp_path)
    assert r.rc == 0, r.stderr
    assert tree(root / "out" / "src") == expected
    # Several sources: each under target/<name>; a file source lands as target/<file name>.
    other = root / "other"
    other.mkdir()
    (other / "o.txt").write_bytes(b"other")
    r = run([str(src), str(other), str(src / "top.txt"), str(root / "multi")], cluster, tmp_path)
    assert r.rc == 0, r.stderr
    got = tree(root / "multi")
    assert {k: v for k, v in got.items() if k.startswith("src/")} == {
        f"src/{k}": v for k, v in expected.items()
    }
    assert got["other/o.txt"] == b"other" and got["top.txt"] == b"top\n"
    # Single file: to a new name, then into an existing directory.
    r = run([str(src / "z.dat"), str(root / "single.dat")], cluster, tmp_path)
    assert r.rc == 0 and (root / "single.dat").read_bytes() == expected["z.dat"]
    r = run([str(src / "z.dat"), f"file://{root / 'multi'}"], cluster, tmp_path)
    assert r.rc == 0 and (root / "multi" / "z.dat").read_bytes() == expected["z.dat"]


def test_existing_files_skipped_by_default_and_overwrite(
    root: Path, cluster: ClusterSpec, tmp_path: Path
):
    src = root / "f.txt"
    src.write_bytes(b"new content")
    dst = root / "g.txt"
    dst.write_bytes(b"old")
    r = run([str(src), str(dst)], cluster, tmp_path)
    assert r.rc == 0, r.stderr
    assert dst.read_bytes() == b"old"
    assert r.summary()["files_skipped"] == 1 and r.summary()["files_copied"] == 0
    r = run(["-overwrite", str(src), str(dst)], cluster, tmp_path)
    assert r.rc == 0, r.stderr
    assert dst.read_bytes() == b"new content"
    assert r.summary()["files_copied"] == 1


def test_update_skips_unchanged_and_copies_changed(
    root: Path, cluster: ClusterSpec, tmp_path: Path
):
    src = root / "src"
    expected = make_tree(src)
    dst = root / "dst"
    r = run(["-update", str(src), str(dst)], cluster, tmp_path)
    assert r.rc == 0, r.stderr
    assert tree(dst) == expected  # -update: the contents go into the target
    before = {p: (dst / p).stat().st_mtime_ns for p, v in expected.items() if v is not None}

    (src / "a" / "one.bin").write_bytes(b"changed size")
    r = run(["-update", str(src), str(dst)], cluster, tmp_path)
    assert r.rc == 0, r.stderr
    s = r.summary()
    assert (s["files_copied"], s["files_skipped"]) == (1, 4)
    assert (dst / "a" / "one.bin").read_bytes() == b"changed size"
    assert not (dst / "src").exists()
    for p, mtime in before.items():
        if p != "a/one.bin":
            assert (dst / p).stat().st_mtime_ns == mtime

    # -overwrite rewrites all of them.
    r = run(["-overwrite", str(src), str(dst)], cluster, tmp_path)
    assert r.rc == 0 and r.summary()["files_copied"] == 5


def test_missing_source_fails_with_cause(root: Path, cluster: ClusterSpec, tmp_path: Path):
    (root / "here.txt").write_text("x")
    missing = root / "not-there"
    r = run([str(root / "here.txt"), str(missing), str(root / "out")], cluster, tmp_path)
    assert r.rc == 1
    assert f"source not found: {missing}" in r.stderr
    assert not (root / "out").exists()  # nothing copied when the listing fails
    progress = json.loads((Path(r.launch.cwd) / PROGRESS_FILE).read_text())
    assert progress["phase"] == "failed"


def test_duplicate_target_paths_fail(root: Path, cluster: ClusterSpec, tmp_path: Path):
    for d in ("x/data", "y/data"):
        (root / d).mkdir(parents=True)
        (root / d / "f").write_text(d)
    r = run([str(root / "x/data"), str(root / "y/data"), str(root / "out")], cluster, tmp_path)
    assert r.rc == 1 and "duplicate target path" in r.stderr


def test_symlink_inside_source_tree_pointing_out_is_skipped(
    root: Path, cluster: ClusterSpec, tmp_path: Path
):
    outside = tmp_path / "outside.txt"
    outside.write_text("private")
    src = root / "src"
    src.mkdir()
    (src / "ok.txt").write_text("ok")
    (root / "inside.txt").write_text("inside")
    (src / "escape").symlink_to(outside)
    (src / "fine").symlink_to(root / "inside.txt")
    r = run([str(src), str(root / "out")], cluster, tmp_path)
    assert r.rc == 0, r.stderr
    assert tree(root / "out") == {"ok.txt": b"ok", "fine": b"inside"}
    assert "skipped symlink" in r.stderr and "escape" in r.stderr


# ------------------------------------------------------------------------ object store


def test_local_to_obs_and_back_round_trip(
    store: Store, bucket: str, root: Path, cluster: ClusterSpec, tmp_path: Path
):
    src = root / "src"
    expected = make_tree(src)
    big = os.urandom(5 * 1024 * 1024 + 123)
    (src / "a" / "big.bin").write_bytes(big)
    expected["a/big.bin"] = big
    files = {k: v for k, v in expected.items() if v is not None}

    r = run(["-m", "3", str(src), f"obs://{bucket}/tree"], cluster, tmp_path, store.props())
    assert r.rc == 0, r.stderr
    objects = store.objects(bucket)
    assert {k: v for k, v in objects.items() if not k.endswith("/")} == {
        f"tree/{k}": v for k, v in files.items()
    }
    assert "tree/empty/inner/" in objects  # empty directory kept as a marker
    assert r.summary()["bytes_copied"] == sum(len(v) for v in files.values())

    back = root / "back"
    r = run([f"s3a://{bucket}/tree", str(back)], cluster, tmp_path, store.props())
    assert r.rc == 0, r.stderr
    assert tree(back) == expected  # byte-identical, nested dirs and the empty one included

    # -update against the store: nothing to do the second time.
    r = run(["-update", str(src), f"obs://{bucket}/tree"], cluster, tmp_path, store.props())
    assert r.rc == 0, r.stderr
    assert (r.summary()["files_copied"], r.summary()["files_skipped"]) == (0, len(files))


def test_cluster_default_credentials(store: Store, bucket: str, root: Path, tmp_path: Path):
    cluster = ClusterSpec("c1", input_roots=(str(root),), extra=store.props())  # reads only
    (root / "f.txt").write_bytes(b"via cluster defaults")
    r = run([str(root / "f.txt"), f"obs://{bucket}/f.txt"], cluster, tmp_path)
    assert r.rc == 0, r.stderr
    assert store.objects(bucket) == {"f.txt": b"via cluster defaults"}
    assert any("cluster defaults" in n for n in r.launch.notes)


def test_wrong_secret_fails_without_leaking(
    store: Store, bucket: str, root: Path, cluster: ClusterSpec, tmp_path: Path
):
    (root / "f.txt").write_text("data")
    wrong = "WrongSecretKeyValue0123456789abcd"
    props = store.props(**{"fs.obs.secret.key": wrong})
    for args in (
        [str(root / "f.txt"), f"obs://{bucket}/f.txt"],
        [f"obs://{bucket}/f.txt", str(root / "back.txt")],
    ):
        r = run(args, cluster, tmp_path, props)
        assert r.rc == 1
        assert "access denied" in r.stderr.lower()
        everything = json.dumps([r.stdout, r.stderr, r.launch.argv, r.launch.env, r.launch.notes])
        assert wrong not in everything
        assert store.access_key not in everything
    assert store.objects(bucket) == {}
    assert not (root / "back.txt").exists()


# ------------------------------------------------------------------- progress and kill


def test_progress_from():
    assert progress_from({"bytes_total": 200, "bytes_done": 50}) == 25.0
    assert progress_from({"bytes_total": 10, "bytes_done": 10}) == 99.0
    assert progress_from({"files_total": 4, "files_done": 1}) == 25.0
    assert progress_from({"phase": "listing"}) == 0.0
    assert progress_from({"bytes_total": "x"}) == 0.0
    assert app_id_for(JOB_ID) == "distcp_0f1e2d3c"


def test_sigterm_stops_promptly_without_partial_file(
    root: Path, cluster: ClusterSpec, tmp_path: Path
):
    big = root / "big.bin"
    with open(big, "wb") as f:
        f.truncate(200 * 1024 * 1024)  # sparse: instant to make, real bytes to copy
    dst = root / "out.bin"
    workdir = tmp_path / "w"
    engine = DistCpEngine()
    spec = job(["-m", "1", "-bandwidth", "40", str(big), str(dst)])
    launch = engine.build(spec, cluster, workdir)
    assert engine.observe(spec, workdir, launch).running is False
    proc = subprocess.Popen(
        launch.argv,
        env=launch.env,
        cwd=launch.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen: list[float] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            obs = engine.observe(spec, workdir, launch)
            if obs.running and obs.progress:
                seen.append(obs.progress)
                if len(seen) >= 2 and seen[-1] > seen[0]:
                    break
            time.sleep(0.1)
        assert len(seen) >= 2 and seen[-1] > seen[0], seen
        assert obs.app_id == "distcp_0f1e2d3c"
        assert seen[-1] < 60  # 200 MB at 40 MB/s: ~5 s in total, far from done
        assert proc.poll() is None

        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        stopped_in = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stopped_in < 2.0
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err
    assert not dst.exists()
    assert sorted(p.name for p in root.iterdir()) == ["big.bin"]  # no temporary left
    assert json.loads((workdir / PROGRESS_FILE).read_text())["phase"] == "stopped"


def test_sigterm_during_upload_leaves_no_object(
    store: Store, bucket: str, root: Path, cluster: ClusterSpec, tmp_path: Path
):
    big = root / "big.bin"
    with open(big, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    workdir = tmp_path / "w"
    engine = DistCpEngine()
    spec = job(["-m", "1", "-bandwidth", "16", str(big), f"obs://{bucket}/big.bin"], store.props())
    launch = engine.build(spec, cluster, workdir)
    proc = subprocess.Popen(
        launch.argv,
        env=launch.env,
        cwd=launch.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            obs = engine.observe(spec, workdir, launch)
            if obs.progress and obs.progress > 15:  # past the first 10 MB part
                break
            time.sleep(0.05)
        assert obs.progress and 15 < obs.progress < 80, obs
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        stopped_in = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stopped_in < 2.0
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert store.objects(bucket) == {}  # the upload was never completed
    assert store.secret_key not in out + err


def test_symlink_in_existing_target_cannot_redirect_writes(
    root: Path, cluster: ClusterSpec, tmp_path: Path
):
    outside = tmp_path / "outside"
    outside.mkdir()
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "x.txt").write_text("x")
    dst = root / "dst"
    dst.mkdir()
    (dst / "sub").symlink_to(outside)
    r = run(["-update", str(src), str(dst)], cluster, tmp_path)
    assert r.rc == 1
    assert "a file or symlink is in the way" in r.stderr
    assert list(outside.iterdir()) == []
    # A file symlink in the target is replaced by the copy, never written through.
    (dst / "sub").unlink()
    (dst / "sub").mkdir()
    (dst / "sub" / "x.txt").symlink_to(outside / "victim.txt")
    r = run(["-overwrite", str(src), str(dst)], cluster, tmp_path)
    assert r.rc == 0, r.stderr
    assert not (dst / "sub" / "x.txt").is_symlink()
    assert (dst / "sub" / "x.txt").read_text() == "x"
    assert list(outside.iterdir()) == []


def test_local_writer_checks_resolved_parent_before_creating(tmp_path: Path):
    from mrs_jobs.engines.runners.distcp import CopyError, LocalSide

    base = tmp_path / "t"
    base.mkdir()
    out = tmp_path / "o"
    out.mkdir()
    (base / "l").symlink_to(out)
    side = LocalSide([], lambda _msg: None)
    side.target_base = base.resolve()
    with pytest.raises(CopyError, match="outside the target"):
        side.writer(str(base / "l" / "new" / "f"))
    with pytest.raises(CopyError, match="outside the target"):
        side.mkdir(str(base / "l" / "d"))
    assert list(out.iterdir()) == []
    w = side.writer(str(base / "ok" / "f"))
    w.write(b"data")
    assert not (base / "ok" / "f").exists()  # only the temporary so far
    w.commit()
    assert (base / "ok" / "f").read_bytes() == b"data"
    assert os.listdir(base / "ok") == ["f"]
