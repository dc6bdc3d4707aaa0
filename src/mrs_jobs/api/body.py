"""JSON bodies parsed *after* authentication, so an unsigned caller learns nothing of them."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from mrs_jobs.errors import InvalidParameter

__all__ = ["body_schema", "parse_body"]

M = TypeVar("M", bound=BaseModel)


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    if not raw.strip():
        raise InvalidParameter("The request body is empty; a JSON object is required.")
    try:
        data = json.loads(raw)
        json.dumps(data, ensure_ascii=False).encode()  # refuse lone surrogates ("\ud800")
    except (ValueError, RecursionError) as exc:  # also: nesting too deep, a 5,000-digit number
        raise InvalidParameter(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise InvalidParameter("The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()))
            msg = err.get("msg", "invalid")
            if err.get("type") == "extra_forbidden":
                msg = "unknown field"
            parts.append(f"{loc}: {msg}" if loc else msg)
        raise InvalidParameter("Invalid request body: " + "; ".join(parts)) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Declare the JSON body in OpenAPI although the route parses it by hand."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
