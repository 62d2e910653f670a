"""Problem responses (RFC 9457) for the API, raised as exceptions from any layer of a view."""

from __future__ import annotations

from flask import Response

from helpdesk.errors import problem


class ApiProblem(Exception):
    """Stop handling the request and answer with a problem+json response."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}

    def response(self) -> Response:
        extra: dict[str, object] = {}
        if self.errors is not None:
            extra["errors"] = self.errors
        resp = problem(self.status, self.detail, **extra)
        resp.headers.update(self.headers)
        return resp


def invalid(errors: dict[str, str]) -> ApiProblem:
    """A 422 naming each field at fault."""
    return ApiProblem(422, f"Check these fields: {', '.join(sorted(errors))}.", errors)
