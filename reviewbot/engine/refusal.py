"""What an endpoint's error body says: its own words, and whether they are about the response format.

Servers say why they refused a request only in words, each in its own and in its own body shape:
OpenAI and vLLM ``{"error": {"message": ...}}`` (older vLLM ``{"message": ...}``), LM Studio and
TGI ``{"error": "..."}``, FastAPI-based servers ``{"detail": ...}``, and OpenRouter the provider's
own body in ``error.metadata.raw``. Nothing here knows HTTP or the SDK: it reads parsed bodies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final

# An error message is for one log line; a server that sends a page of it is cut.
_MAX_CHARS: Final = 500
_MESSAGE_KEYS: Final = ("error", "message", "detail", "msg")
# The keys above nest in real bodies two or three deep; deeper is not a message.
_MAX_DEPTH: Final = 4

# How servers word a refused response_format or schema: OpenAI's "'response_format' of type
# 'json_schema' is not supported with this model" and "Invalid schema for response_format", vLLM's
# "JSON schema contains features not supported by xgrammar" and "Grammar error: …", llama.cpp's
# "JSON schema conversion failed" and "failed to parse grammar", LM Studio's "'response_format.type'
# must be …", Ollama's "invalid JSON schema in format", LiteLLM's "does not support parameters:
# ['response_format']", DeepSeek's "This response_format type is unavailable now", TGI's "grammar is
# not supported". reviewbot sends no tools, so the response format's is the only schema a request holds.
_ABOUT_FORMAT: Final = re.compile(
    r"response[_ .]?format|json[_ ]?object|structured[_ ]outputs?|grammar|guided|schema", re.IGNORECASE
)


def about_response_format(text: str) -> bool:
    """Whether an error's text is about the response format: structured output unsupported, or
    its schema or grammar refused."""
    return bool(_ABOUT_FORMAT.search(text))


def server_words(body: object) -> str:
    """The reason an error body gives, on one line; ``""`` when it gives none."""
    words = " ".join(_words(body, _MAX_DEPTH).split())
    return words if len(words) <= _MAX_CHARS else words[: _MAX_CHARS - 1] + "…"


def described(body: object) -> str:
    """An error body for a message: its reason, else the body itself, else that there is none."""
    words = server_words(body)
    if words:
        return words
    if body and not isinstance(body, str):
        return server_words(json.dumps(body, default=str))
    return "no error message"


def _words(body: object, depth: int) -> str:
    if isinstance(body, str):
        return body
    if depth == 0:
        return ""
    if isinstance(body, list):
        return "; ".join(filter(None, (_words(item, depth - 1) for item in body)))
    if not isinstance(body, Mapping):
        return ""
    for key in _MESSAGE_KEYS:
        words = _words(body.get(key), depth - 1)
        if words:
            # OpenRouter's message is "Provider returned error"; the reason is the provider's body.
            metadata = body.get("metadata")
            raw = metadata.get("raw") if isinstance(metadata, Mapping) else None
            return f"{words}: {raw}" if isinstance(raw, str) and raw else words
    return ""
