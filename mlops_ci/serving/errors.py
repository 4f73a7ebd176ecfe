"""Errors a request can cause. Each carries its HTTP status and a short reason label (for
the error counter); the message names the problem and never repeats request data beyond
a clipped input or model name."""

from __future__ import annotations

import re

_PRINTABLE = re.compile(r"[^\x20-\x7e]")


MAX_MESSAGE = 512


class ServingError(Exception):
    """``message`` is clipped to ``MAX_MESSAGE`` characters: an error body stays small
    whatever a request holds."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


def bad_request(message: str) -> ServingError:
    """The body is not a valid request of the protocol (not JSON, wrong structure)."""
    return ServingError(400, message, "bad_request")


def unprocessable(message: str) -> ServingError:
    """A valid request that does not fit the model's signature."""
    return ServingError(422, message, "signature")


def too_large(message: str) -> ServingError:
    return ServingError(413, message, "too_large")


def not_found(message: str) -> ServingError:
    return ServingError(404, message, "not_found")


def clip(value: object, limit: int = 64) -> str:
    """A client-supplied name, safe to put in an error message: printable ASCII, clipped."""
    text = _PRINTABLE.sub("?", str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."
