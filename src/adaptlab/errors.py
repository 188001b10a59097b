"""The exception tree. Every message names the bad value (file and line where there is one) and the fix.

The CLI prints `AdaptlabError`s without a traceback and exits non-zero.
"""

from __future__ import annotations


class AdaptlabError(Exception):
    """Base of every error adaptlab raises on purpose."""

    exit_code = 1


class ConfigError(AdaptlabError):
    """adaptlab.toml (or an override) has a bad value."""

    exit_code = 2


class ModelNotFoundError(AdaptlabError):
    """A configured model file or package is missing."""


class BackendError(AdaptlabError):
    """A generation/embedding/vector-store backend failed (unreachable server, bad reply)."""


class ContextLengthError(BackendError):
    """The prompt does not fit the model's context window: the request is too long, the backend is fine.
    `detail` is the backend's own words ("Requested tokens (6036) exceed context window of 2048")."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(f"{detail} — {fix}.")
        self.detail = detail


class StoreMismatchError(AdaptlabError):
    """The index was built with another embedder (name or dimension) than the one configured."""


class IngestError(AdaptlabError):
    """Ingestion could not run at all (no inputs), or --strict and some files failed."""


class TrainingError(AdaptlabError):
    """Training in worker processes failed: the message carries their exit code, error and last log lines."""


class InputError(AdaptlabError):
    """A user-supplied file has bad content; the message carries file:line."""

    def __init__(self, path: str, line: int | None, reason: str, fix: str = "") -> None:
        where = f"{path}:{line}" if line else path
        message = f"{where}: {reason}"
        if fix:
            message += f" — {fix}"
        super().__init__(message)
        self.path = path
        self.line = line
        self.reason = reason
