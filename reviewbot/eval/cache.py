"""Every model answer of an eval, kept on disk, so a rerun or a new metric costs nothing.

An answer is keyed by the endpoint, the model and the exact request: the chat messages, the
answer's JSON schema, the temperature and the answer token limit. Change any of them (a new
prompt, another window that packs the diff differently) and the request is asked again.
Failed requests are never kept, so a rerun asks them again.

Each answer is one small JSON file, ``<dir>/<key[:2]>/<key>.json``, written to a temporary
name and renamed, so a run that is stopped never leaves half an answer behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reviewbot.engine.usage import Usage
from reviewbot.render.json_out import usage_to_dict

# Bumped when the key or the file changes meaning: old answers are then simply not found.
_VERSION = 1
#: The token counts an answer keeps (requests is always 1); older files lack the last two.
_COUNTS = ("input_tokens", "output_tokens", "reasoning_tokens", "cached_tokens", "estimated_requests")


@dataclass(frozen=True, slots=True)
class Request:
    """What makes two model requests the same request."""

    base_url: str
    model: str
    messages: tuple[tuple[str, str], ...]
    schema: str  # canonical JSON
    schema_name: str
    temperature: float
    max_output_tokens: int

    @classmethod
    def of(
        cls,
        *,
        base_url: str,
        model: str,
        messages: list[dict[str, str]],
        schema: dict[str, Any],
        schema_name: str,
        temperature: float,
        max_output_tokens: int,
    ) -> Request:
        return cls(
            base_url=base_url.rstrip("/"),
            model=model,
            messages=tuple((message["role"], message["content"]) for message in messages),
            schema=json.dumps(schema, sort_keys=True, separators=(",", ":")),
            schema_name=schema_name,
            temperature=temperature,
            max_output_tokens=max_output_tokens,
        )

    def key(self) -> str:
        canonical = json.dumps(
            [
                _VERSION,
                self.base_url,
                self.model,
                [list(message) for message in self.messages],
                self.schema,
                self.schema_name,
                self.temperature,
                self.max_output_tokens,
            ],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Answer:
    """A model answer as kept: what the engine reads, and what it cost and took the first time."""

    text: str
    usage: Usage
    finish_reason: str | None
    seconds: float
    model: str = ""  # the engine's Reply: "" leaves the model under test as the one that answered


class AnswerCache:
    """Answers on disk under ``folder``; None as the folder keeps nothing (``--no-cache``)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def get(self, request: Request) -> Answer | None:
        if self.folder is None:
            return None
        path = self._path(request.key())
        try:
            data = json.loads(path.read_text("utf-8"))
            usage = data["usage"]
            return Answer(
                text=data["text"],
                # Every field, so a rerun prices (or does not) exactly as the first run did.
                usage=Usage(**{name: usage.get(name, 0) for name in _COUNTS}, requests=1, cost_usd=usage["cost_usd"]),
                finish_reason=data["finish_reason"],
                seconds=data["seconds"],
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable (an older layout, a damaged file): ask again, and overwrite it

    def put(self, request: Request, answer: Answer) -> None:
        if self.folder is None:
            return
        path = self._path(request.key())
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "version": _VERSION,
            "model": request.model,
            "base_url": request.base_url,
            "text": answer.text,
            "finish_reason": answer.finish_reason,
            "seconds": answer.seconds,
            "usage": {**usage_to_dict(answer.usage), "cost_usd": answer.usage.cost_usd},
        }
        handle, temporary = tempfile.mkstemp(prefix=".answer-", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(data, file, ensure_ascii=False)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}.json"


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/reviewbot/eval``, else ``~/.cache/reviewbot/eval``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reviewbot" / "eval"
