"""The "physical limit" of P3: a bare FastAPI app served exactly like ``mrs-jobs serve``.

One process, one event loop, uvicorn with the service's own settings (``log_level=warning``,
``access_log=False``, ``log_config=None``, ``timeout_graceful_shutdown=10``) on a socket created
the way ``mrs_jobs/server.py`` creates it (``socket.socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)``,
so asyncio sets TCP_NODELAY on accepted connections; SO_REUSEADDR, bind,
``server.run(sockets=[sock])``). Routes return a JSON of the size and shape of the service's:

- ``GET  /bare/show``          -> ``{"job_detail": {...}}`` (async def, no thread pool)
- ``GET  /bare/show-threaded`` -> the same through ``run_in_threadpool`` (as the service's routes)
- ``GET  /bare/list``          -> ``{"total_record": N, "job_list": [10 jobs]}``
- ``POST /bare/submit``        -> reads the body, ``{"job_submit_result": {...}}``

    python bench/bare_app.py [--port 0]
"""

from __future__ import annotations

import argparse
import socket
import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

JOB = {
    "job_id": "6b1c0d9e-0000-4000-8000-000000000001",
    "job_name": "job-0042",
    "job_type": "SparkSubmit",
    "user": "admin",
    "queue": "default",
    "job_state": "FINISHED",
    "job_result": "SUCCEEDED",
    "job_progress": 100.0,
    "submitted_time": 1751241600000,
    "started_time": 1751241601000,
    "finished_time": 1751241700000,
    "elapsed_time": 99000,
    "arguments": "[/opt/jobs/etl.py, --date, 2025-01-01]",
    "properties": "{spark.executor.memory=2g, mrs.bench=42}",
    "launcher_id": "local-1751241601000",
    "app_id": "local-1751241601000",
    "tracking_url": "",
}

app = FastAPI(docs_url=None, redoc_url=None)


@app.get("/bare/show")
async def show() -> JSONResponse:
    return JSONResponse({"job_detail": JOB}, status_code=202)


def _detail() -> dict:
    return {"job_detail": JOB}


@app.get("/bare/show-threaded")
async def show_threaded() -> JSONResponse:
    return JSONResponse(await run_in_threadpool(_detail), status_code=202)


@app.get("/bare/list")
async def list_() -> JSONResponse:
    return JSONResponse({"total_record": 1000000, "job_list": [JOB] * 10}, status_code=202)


@app.post("/bare/submit")
async def submit(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"job_submit_result": {"job_id": JOB["job_id"], "state": "COMPLETE"}})


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # as mrs_jobs/server.py
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    print(f"bare is running at http://{args.host}:{port}", flush=True)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, log_config=None, timeout_graceful_shutdown=10
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
