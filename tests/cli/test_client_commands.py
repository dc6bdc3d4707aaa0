"""The client commands against a real server, run as subprocesses the way a user runs them.

One server for the module. Most jobs go to a cluster with no running slots, so they stay
SUBMITTED and cost nothing; one tiny real PySpark job covers ``--wait``, ``logs`` and
``logs -f``.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from support_server import BIN, ServerProcess

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("client")
    server = ServerProcess(base / "data").start()
    server.home = base / "home"  # type: ignore[attr-defined]
    server.home.mkdir()  # type: ignore[attr-defined]
    yield server
    server.stop()


def run(
    srv: ServerProcess,
    *args: str,
    env: dict[str, str] | None = None,
    data_dir: bool = True,
    home: Path | None = None,
    timeout: float = 60,
    tty_answer: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``mrs-jobs ARGS`` with a clean client environment (no profile, no MRS_JOBS_* leaks).

    stdin is /dev/null, or with ``tty_answer`` a pseudo-terminal that has it typed already.
    """
    full = {k: v for k, v in os.environ.items() if not k.startswith("MRS_JOBS_")}
    home = home or srv.home  # type: ignore[attr-defined]
    full.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    if data_dir:
        full["MRS_JOBS_DATA_DIR"] = str(srv.data_dir)
    full.update(env or {})
    if tty_answer is None:
        return subprocess.run(
            [str(BIN), *args],
            env=full,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
    master, slave = pty.openpty()
    try:
        os.write(master, tty_answer.encode())
        return subprocess.run(
            [str(BIN), *args],
            env=full,
            capture_output=True,
            text=True,
            stdin=slave,
            timeout=timeout,
        )
    finally:
        os.close(slave)
        os.close(master)


def run_all(
    srv: ServerProcess, *commands: tuple[str, ...]
) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands at once: each CLI start costs a few hundred ms of imports."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda args: run(srv, *args), commands))


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


@pytest.fixture(scope="module")
def queued(srv: ServerProcess) -> str:
    """A cluster with no running slots: its jobs stay SUBMITTED."""
    project = srv.bootstrap["project_id"]
    return ok(
        run(srv, "admin", "create-cluster", project, "--name", "queued", "--max-running", "0")
    ).strip()


def q(
    srv: ServerProcess, cluster: str, command: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """A command on ``cluster`` (given first: after ``--`` it would be a job argument)."""
    return run(srv, command, "--cluster", cluster, *args)


def q_tty(
    srv: ServerProcess, cluster: str, answer: str, command: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return run(srv, command, "--cluster", cluster, *args, tty_answer=answer)


def submit(srv: ServerProcess, cluster: str, name: str, *extra: str) -> str:
    job_id = ok(q(srv, cluster, "submit", "-t", "SparkSubmit", "-n", name, "-q", *extra)).strip()
    assert UUID.fullmatch(job_id)
    return job_id


def listed(srv: ServerProcess, cluster: str, *filters: str) -> dict:
    return json.loads(ok(q(srv, cluster, "list", "--json", *filters)))


def test_help_is_instant_and_imports_nothing_heavy() -> None:
    started = time.monotonic()
    out = subprocess.run([str(BIN), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    for command in ("submit", "list", "show", "kill", "delete", "logs", "wait", "sql-result"):
        assert command in out.stdout
    assert time.monotonic() - started < 5  # about 0.2 s; generous for loaded CI machines
    code = (
        "import mrs_jobs.cli.main, sys; "
        "print('httpx' in sys.modules, 'sqlalchemy' in sys.modules, 'fastapi' in sys.modules, "
        "'rich.table' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == ["False", "False", "False", "False"]


def test_submit_show_and_list_filters(srv: ServerProcess, queued: str) -> None:
    tag = uuid.uuid4().hex[:6]
    one, two = f"one-{tag}", f"two-{tag}"
    before = datetime.now().replace(microsecond=0)
    tricky = ["a b;c", "$(echo injected)", "'q' \"dq\"", "*", "--flag", "x|y>z"]
    out = ok(
        q(
            srv,
            queued,
            "submit",
            "--type",
            "sparksubmit",
            "--name",
            one,
            "-p",
            "k1=v1",
            "--property",
            "db.password=hunter2",
            "--arg",
            "/tmp/app.py",
            "--",
            *tricky,
        )
    )
    first = UUID.search(out).group(0)  # type: ignore[union-attr]
    assert out.strip() == f"Submitted job {first}"
    second = submit(srv, queued, two, "--", "/tmp/x.py")
    third = submit(srv, queued, two, "--", "/tmp/x.py")

    detail = json.loads(ok(q(srv, queued, "show", first, "--json")))["job_detail"]
    assert detail["arguments"] == "[" + ", ".join(["/tmp/app.py", *tricky]) + "]"
    assert detail["properties"] == "{k1=v1, db.password=******}"
    assert (detail["job_type"], detail["job_name"]) == ("SparkSubmit", one)
    assert (detail["job_state"], detail["job_result"]) == ("SUBMITTED", "UNDEFINED")
    table = ok(q(srv, queued, "show", first))
    assert first in table and "SUBMITTED" in table and "$(echo injected)" in table
    assert "hunter2" not in table

    since = before.isoformat()
    until = (datetime.now() + timedelta(minutes=1)).isoformat(timespec="seconds")
    early = str(int(before.timestamp() * 1000) - 1)
    exact = (
        "--name",
        one,
        "--type",
        "SparkSubmit",
        "--state",
        "submitted",
        "--result",
        "UNDEFINED",
        "--user",
        "admin",
        "--queue",
        "default",
    )
    queries: dict[tuple[str, ...], list[str]] = {  # filters -> the ids expected, in order
        ("--name", two): [third, second],  # newest first
        ("--name-contains", f"WO-{tag}".upper()): [third, second],  # a part, any case
        ("--name", two, "--asc"): [second, third],
        ("--name", two, "--limit", "1", "--page", "2"): [second],
        ("--id", first): [first],
        exact: [first],
        ("--name", one, "--type", "SparkSql"): [],
        ("--name", one, "--state", "RUNNING"): [],
        ("--name", two, "--since", since, "--until", until): [third, second],
        ("--name", two, "--until", early): [],
        ("--name", two, "--since", "1h"): [third, second],
    }
    answers = run_all(srv, *(("list", "--cluster", queued, "--json", *f) for f in queries))
    for (filters, expected), answer in zip(queries.items(), answers, strict=True):
        data = json.loads(ok(answer))
        assert [j["job_id"] for j in data["job_list"]] == expected, filters
        if "--limit" in filters:
            assert data["total_record"] == 2  # all matches, not the page

    text, bad_state, bad_time, bad_prop = run_all(
        srv,
        ("list", "--cluster", queued, "--name", two),
        ("list", "--cluster", queued, "--state", "SLEEPING"),
        ("list", "--cluster", queued, "--since", "yesterday"),
        ("submit", "--cluster", queued, "-t", "SparkSubmit", "-n", one, "-p", "novalue"),
    )
    table = ok(text)
    assert second in table and third in table and two in table and "SUBMITTED" in table
    assert "of 2 jobs" in table
    assert bad_state.returncode == 1 and "Error 12000002" in bad_state.stderr
    assert bad_time.returncode == 2 and "epoch milliseconds" in bad_time.stderr
    assert bad_prop.returncode == 2 and "KEY=VALUE" in bad_prop.stderr


def test_kill_wait_delete_and_errors(srv: ServerProcess, queued: str) -> None:
    tag = uuid.uuid4().hex[:6]
    victim, keeper = (
        UUID.fullmatch(ok(p).strip()).group(0)  # type: ignore[union-attr]
        for p in run_all(
            srv,
            *(
                ("submit", "--cluster", queued, "-t", "SparkSubmit", "-n", f"{n}-{tag}", "-q")
                for n in ("victim", "keeper")
            ),
        )
    )
    assert "Kill requested" in ok(q(srv, queued, "kill", victim))
    unknown = str(uuid.uuid4())
    waited, timed_out, no_sql, refused, partial = run_all(
        srv,
        ("wait", "--cluster", queued, victim, "--interval", "0.2", "--timeout", "30"),
        ("wait", "--cluster", queued, keeper, "-q", "--interval", "0.2", "--timeout", "0.5"),
        ("sql-result", "--cluster", queued, keeper),
        ("delete", "--cluster", queued, keeper),  # stdin is not a terminal and no --yes
        ("delete", "--cluster", queued, keeper, unknown, "--yes"),
    )
    assert waited.returncode == 4, waited.stderr  # killed: non-zero for scripts
    assert f"{victim} KILLED KILLED" in waited.stdout
    assert timed_out.returncode == 124 and "still SUBMITTED" in timed_out.stderr
    assert no_sql.returncode == 1 and "Error 0179" in no_sql.stderr
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert partial.returncode == 1 and "Error 0176" in partial.stderr and unknown in partial.stderr

    shown, again, kept = run_all(
        srv,
        ("show", "--cluster", queued, victim, "--json"),
        ("kill", "--cluster", queued, victim),  # already KILLED: accepted, nothing happens
        ("show", "--cluster", queued, keeper, "--json"),
    )
    detail = json.loads(ok(shown))["job_detail"]
    assert (detail["job_state"], detail["job_result"]) == ("KILLED", "KILLED")
    ok(again)
    assert json.loads(ok(kept))["job_detail"]["job_state"] == "SUBMITTED"  # nothing deleted
    story, story_json = run_all(
        srv,
        ("history", "--cluster", queued, victim),
        ("history", "--cluster", queued, victim, "--json"),
    )
    assert "SUBMITTED" in ok(story) and "KILLED" in story.stdout and "Caused by" in story.stdout
    steps = [(e["from_state"], e["to_state"]) for e in json.loads(ok(story_json))["job_events"]]
    assert steps[0] == (None, "NEW") and steps[-1] == ("SUBMITTED", "KILLED")

    declined = q_tty(srv, queued, "n\n", "delete", keeper)
    assert (
        declined.returncode == 2 and keeper in declined.stderr and "Delete them?" in declined.stderr
    )
    ok(q(srv, queued, "show", keeper))
    with ThreadPoolExecutor() as pool:
        by_flag = pool.submit(q, srv, queued, "delete", victim, "--yes")
        confirmed = pool.submit(q_tty, srv, queued, "y\n", "delete", keeper, keeper)
        assert "Deleted 1 job(s)" in ok(by_flag.result())
        assert "Deleted 1 job(s)" in ok(confirmed.result())  # a repeated id counts once
    for gone in run_all(
        srv,
        ("show", "--cluster", queued, victim),
        ("show", "--cluster", queued, keeper),
        ("wait", "--cluster", queued, keeper),
    ):
        assert gone.returncode == 1 and "Error 0176" in gone.stderr


def test_connection_from_flags_env_and_profile(
    srv: ServerProcess, queued: str, tmp_path: Path
) -> None:
    boot = srv.bootstrap
    token = ok(
        run(srv, "admin", "create-token", boot["project_id"], "--user", "tina", "--ttl", "600")
    ).strip()
    env = {
        "MRS_JOBS_ENDPOINT": boot["endpoint"],
        "MRS_JOBS_PROJECT_ID": boot["project_id"],
        "MRS_JOBS_CLUSTER_ID": queued,
        "MRS_JOBS_TOKEN": token,
    }
    # environment variables only, with a token: the job's user is the token's
    job_id = ok(
        run(
            srv,
            "submit",
            "-t",
            "SparkSubmit",
            "-n",
            "by-token",
            "-q",
            "--",
            "/tmp/x.py",
            env=env,
            data_dir=False,
        )
    ).strip()
    config = tmp_path / ".config" / "mrs-jobs"
    config.mkdir(parents=True)
    (config / "profiles.toml").write_text(
        f'[ci]\nendpoint = "{boot["endpoint"]}"\nproject = "{boot["project_id"]}"\n'
        f'cluster = "{queued}"\ntoken = "{token}"\n'
    )
    flags = ("--endpoint", boot["endpoint"], "--project", boot["project_id"], "--cluster", queued)
    calls = [
        lambda: run(srv, "show", job_id, "--json", env=env, data_dir=False),
        # explicit flags only (no bootstrap.json to fall back on)
        lambda: run(
            srv,
            "show",
            job_id,
            "--json",
            *flags,
            "--ak",
            boot["ak"],
            "--sk",
            boot["sk"],
            data_dir=False,
        ),
        # a named profile in ~/.config/mrs-jobs/profiles.toml
        lambda: run(
            srv, "show", job_id, "--json", "--profile", "ci", data_dir=False, home=tmp_path
        ),
        lambda: run(srv, "list", "--profile", "nope", data_dir=False, home=tmp_path),
        lambda: run(srv, "list", data_dir=False, home=tmp_path),
        lambda: run(srv, "list", "--cluster", queued, "--sk", "wrong-secret"),
        lambda: run(srv, "list", "--cluster", queued, "--token", token + "x"),
        lambda: run(srv, "list", "--endpoint", "http://127.0.0.1:9"),
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        by_env, by_flags, by_profile, unknown, nothing, wrong, bad_token, down = pool.map(
            lambda call: call(), calls
        )
    assert json.loads(ok(by_env))["job_detail"]["user"] == "tina"
    assert json.loads(ok(by_flags))["job_detail"]["job_id"] == job_id
    assert json.loads(ok(by_profile))["job_detail"]["job_id"] == job_id
    assert unknown.returncode == 2 and "no profile [nope]" in unknown.stderr
    assert nothing.returncode == 2 and "MRS_JOBS_ENDPOINT" in nothing.stderr
    assert wrong.returncode == 1 and "Error APIGW.0301" in wrong.stderr
    assert bad_token.returncode == 1 and "APIGW.0301" in bad_token.stderr
    assert down.returncode == 1 and "cannot reach" in down.stderr


HELLO_PY = """\
import sys, time
print("HELLO-START", sys.argv[1:], flush=True)
time.sleep(2)
print("HELLO-END", flush=True)
"""


@pytest.mark.spark
def test_real_job_wait_logs_and_follow(srv: ServerProcess, tmp_path: Path) -> None:
    script = tmp_path / "hello.py"
    script.write_text(HELLO_PY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRS_JOBS_")}
    env.update(MRS_JOBS_DATA_DIR=str(srv.data_dir), HOME=str(srv.home))  # type: ignore[attr-defined]
    submitting = subprocess.Popen(
        [
            str(BIN),
            "submit",
            "-t",
            "SparkSubmit",
            "-n",
            "hello",
            "--wait",
            "--interval",
            "0.3",
            "--",
            str(script),
            "a b",
            "$HOME",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = submitting.stdout.readline()  # type: ignore[union-attr]
        job_id = UUID.search(first_line).group(0)  # type: ignore[union-attr]
        state = json.loads(ok(run(srv, "show", job_id, "--json")))["job_detail"]["job_state"]
        assert state not in ("FINISHED", "FAILED", "KILLED")  # still starting: -f must follow
        followed = ok(run(srv, "logs", job_id, "-f", "--interval", "0.3", timeout=120))
        rest, err = submitting.communicate(timeout=120)
    finally:
        if submitting.poll() is None:
            submitting.kill()
    assert submitting.returncode == 0, err
    assert f"{job_id} FINISHED SUCCEEDED" in rest
    assert "HELLO-START ['a b', '$HOME']" in followed and "HELLO-END" in followed

    assert ok(run(srv, "logs", job_id)) == followed
    assert ok(run(srv, "logs", job_id, "--tail", "10")) == "HELLO-END\n"
    ok(run(srv, "logs", job_id, "--type", "stderr", "--tail", "2000"))
    assert ok(run(srv, "wait", job_id, "-q")) == ""
