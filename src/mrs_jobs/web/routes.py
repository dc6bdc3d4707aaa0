"""Serves the console's static files under ``/console/`` with strict security headers.

The page is plain HTML, CSS and JavaScript (no build step). It holds no secret and talks to
the service only through the public ``/v2`` API, with the token the user signs in with.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

__all__ = ["SECURITY_HEADERS", "router"]

router = APIRouter(include_in_schema=False)

_JS = "text/javascript; charset=utf-8"

# Only these files are served; anything else under /console/ is the app's JSON 404. The page
# loads console.js as an ES module, which imports the others; a browser runs a module only when
# it is served with a JavaScript content type.
_FILES = {
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    "console.js": _JS,
    "api.js": _JS,
    "detail.js": _JS,
    "dialogs.js": _JS,
    "dom.js": _JS,
    "durations.js": _JS,
    "format.js": _JS,
    "job-history.js": _JS,
    "job-log.js": _JS,
    "job-reason.js": _JS,
    "jobs-list.js": _JS,
    "live.js": _JS,
    "page.js": _JS,
}

# 'self' only: no inline script or style, no other origin. form-action 'none' also keeps a
# sign-in form from ever being submitted natively (which would put the token in a URL).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def _serve(name: str) -> Response:
    media_type = _FILES.get(name)
    if media_type is None:
        raise HTTPException(status_code=404)
    data = (resources.files("mrs_jobs.web") / "static" / name).read_bytes()
    return Response(data, media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/")
def root(request: Request) -> RedirectResponse:
    # A browser is sent to the console; API clients keep the JSON 404 of an unknown route.
    if "text/html" not in request.headers.get("accept", ""):
        raise HTTPException(status_code=404)
    return RedirectResponse("/console/", status_code=302)


@router.get("/console")
def console_no_slash() -> RedirectResponse:
    # Relative asset and API paths in the page assume the trailing slash.
    return RedirectResponse("/console/", status_code=302)


@router.get("/console/")
def console_index() -> Response:
    return _serve("index.html")


@router.get("/console/{name}")
def console_file(name: str) -> Response:
    return _serve(name)
