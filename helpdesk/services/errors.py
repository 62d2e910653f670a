"""Domain errors the blueprints translate into HTTP responses."""

from __future__ import annotations


class DomainError(Exception):
    """Base class for errors a service raises on purpose."""


class NotFound(DomainError):
    """The object does not exist or the actor may not know it exists (HTTP 404)."""


class Forbidden(DomainError):
    """The actor can see the object but may not do this (HTTP 403)."""


class Conflict(DomainError):
    """The request is valid but something changed underneath it (HTTP 409)."""


class ValidationError(DomainError):
    """Bad input: field name -> message a person can act on (HTTP 422)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
