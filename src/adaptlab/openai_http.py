"""The `openai` client shared by the OpenAI-compatible generator and embedder, and its errors in our words."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from adaptlab.errors import BackendError


def make_client(base_url: str, api_key_env: str, timeout_s: float):
    import openai

    # Local servers (vLLM, Ollama, llama.cpp) usually need no key, but the client insists on one.
    return openai.OpenAI(base_url=base_url, api_key=os.environ.get(api_key_env) or "not-needed",
                         timeout=timeout_s, max_retries=2)


def bad_reply(server: str, base_url: str, section: str, expected: str, exc: Exception) -> BackendError:
    return BackendError(
        f"{server} at {base_url} did not answer with {expected} ({exc}) — check {section}.base_url "
        f"(an OpenAI-compatible API usually ends in /v1)."
    )


@contextmanager
def translated_errors(server: str, base_url: str, section: str, api_key_env: str, expected: str) -> Iterator[None]:
    """Turn the client's exceptions into BackendErrors that name the URL and the setting to fix."""
    import openai

    try:
        yield
    except openai.APIConnectionError as exc:
        raise BackendError(
            f"Cannot reach the {server.lower()} at {base_url} ({exc}) — start it or fix {section}.base_url in "
            f"adaptlab.toml."
        ) from exc
    except openai.APIStatusError as exc:
        raise BackendError(
            f"{server} at {base_url} answered {exc.status_code}: {exc.message} — check {section}.model and the "
            f"API key in ${api_key_env}."
        ) from exc
    except (ValueError, AttributeError, TypeError) as exc:  # a body that is not JSON (an HTML page, a proxy)
        raise bad_reply(server, base_url, section, expected, exc) from exc
