"""The engine gets a sensitive argument's real value: the ``@`` MRS uses to mark it is
removed, the rest passed verbatim; other arguments are untouched."""

from __future__ import annotations

import json
from pathlib import Path

from support_supervisor import drive


def test_engine_gets_sensitive_arguments_without_their_at(world) -> None:
    sent = ["plain", "@password=Sup3r Secret;$(x)", "@", "x@y", "@@double"]
    job_id = world.submit("--echo-args", *sent)
    sup = world.supervisor()
    drive(sup, lambda: world.show(job_id).state in ("FINISHED", "FAILED"))
    job = world.show(job_id)
    assert (job.state, job.result) == ("FINISHED", "SUCCEEDED")
    out = (Path(job.workdir) / "stdout.log").read_text().strip().splitlines()[-1]
    assert json.loads(out) == ["plain", "password=Sup3r Secret;$(x)", "", "x@y", "@double"]
    # Once the job ends its record keeps the sensitive ones masked, the others as submitted.
    assert job.arguments == ["--echo-args", "plain", "@******", "@******", "x@y", "@******"]
