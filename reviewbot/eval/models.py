"""The models an eval compares: ``--model`` specs turned into the settings ``reviewbot review`` would use.

    --model qwen3-coder-30b                                   # REVIEWBOT_* settings as they are
    --model gpt-4o@https://api.openai.com/v1,api_key_env=OPENAI_KEY
    --model my-model@http://localhost:8000/v1,context_window=8192,input_price=0,output_price=0

A spec is ``NAME[@BASE_URL][,OPTION=VALUE…]``. Everything it leaves out comes from the
environment, as for ``reviewbot review``. The key is never written on the command line:
``api_key_env`` names the variable that holds it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import SecretStr

from reviewbot.engine.review import ReviewOptions
from reviewbot.errors import ConfigError
from reviewbot.settings import Settings, load_settings

_SPEC = re.compile(r"(?P<name>[^@,\s]+)(?:@(?P<url>https?://[^,\s]+))?(?:,(?P<options>.*))?")
# The settings a spec may set, by option name; each is a field of Settings.
OPTIONS = (
    "context_window",
    "max_output_tokens",
    "input_price",
    "output_price",
    "concurrency",
    "temperature",
    "disable_thinking",
    "max_retries",
    "timeout",
)


@dataclass(frozen=True, slots=True)
class ModelUnderTest:
    """One model of an eval: the name its report rows carry, and its settings and review options."""

    label: str
    settings: Settings
    options: ReviewOptions

    @property
    def model(self) -> str:
        return self.settings.model


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A parsed ``--model`` value, before the environment fills it in."""

    name: str
    base_url: str | None
    options: dict[str, str]
    api_key_env: str | None
    label: str | None


def parse_spec(text: str) -> ModelSpec:
    match = _SPEC.fullmatch(text.strip())
    if match is None:
        raise ConfigError(f"--model {text!r} is not NAME[@BASE_URL][,OPTION=VALUE…]")
    options: dict[str, str] = {}
    for part in filter(None, (piece.strip() for piece in (match["options"] or "").split(","))):
        key, equals, value = part.partition("=")
        key = key.strip()
        if not equals or not value.strip():
            raise ConfigError(f"--model {text!r}: {part!r} is not OPTION=VALUE")
        if key not in (*OPTIONS, "api_key_env", "label"):
            known = ", ".join((*OPTIONS, "api_key_env", "label"))
            raise ConfigError(f"--model {text!r}: {key!r} is not an option; use one of {known}")
        options[key] = value.strip()
    return ModelSpec(
        name=match["name"],
        base_url=match["url"],
        options={key: value for key, value in options.items() if key in OPTIONS},
        api_key_env=options.get("api_key_env"),
        label=options.get("label"),
    )


def models_under_test(specs: Sequence[str], overrides: dict[str, object] | None = None) -> tuple[ModelUnderTest, ...]:
    """The models named by ``specs`` (the configured model when there is none), each with its
    settings: the environment, then ``overrides`` (shared command-line options), then the spec."""
    parsed: list[ModelSpec | None] = [parse_spec(spec) for spec in specs] or [None]
    models = [_model(spec, overrides or {}) for spec in parsed]
    labels = [model.label for model in models]
    if len(set(labels)) == len(labels):
        return tuple(models)
    # The same name twice: tell them apart by endpoint, or ask for a label.
    models = [
        model if labels.count(model.label) == 1 or spec is None or spec.label else _with_host(model)
        for model, spec in zip(models, parsed, strict=True)
    ]
    hosts = [model.label for model in models]
    for model, label in zip(models, labels, strict=True):
        if hosts.count(model.label) > 1:
            where = urlsplit(model.settings.base_url).netloc
            raise ConfigError(f"two --model values are both {label!r} at {where}; give one of them label=NAME")
    return tuple(models)


def _model(spec: ModelSpec | None, overrides: dict[str, object]) -> ModelUnderTest:
    given: dict[str, object] = dict(overrides)
    if spec is not None:
        given["model"] = spec.name
        if spec.base_url:
            given["base_url"] = spec.base_url
        given.update(spec.options)
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise ConfigError(f"--model {spec.name}: api_key_env={spec.api_key_env} is not set in the environment")
            given["api_key"] = SecretStr(key)
    try:
        settings = load_settings(**given)
    except ConfigError as exc:
        where = f"--model {spec.name}: " if spec is not None else ""
        raise ConfigError(f"{where}{exc}") from None
    # The run has its own cap (--max-cost); a review's own REVIEWBOT_MAX_COST would cut cases short.
    options = dataclasses.replace(ReviewOptions.from_settings(settings), max_cost=None)
    label = (spec.label if spec is not None else None) or settings.model
    return ModelUnderTest(label, settings, options)


def _with_host(model: ModelUnderTest) -> ModelUnderTest:
    host = urlsplit(model.settings.base_url).netloc
    return dataclasses.replace(model, label=f"{model.label}@{host}")


#: What ``eval run --variant`` may vary, and the values each takes.
VARIANTS = {"context": ("diff", "function")}


def parse_variant(text: str) -> tuple[str, str]:
    """``context=function`` → ("context", "function"); anything else is a :class:`ConfigError`."""
    name, _, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if name not in VARIANTS or value not in VARIANTS[name]:
        choices = ", ".join(f"{key}={choice}" for key, values in VARIANTS.items() for choice in values)
        raise ConfigError(f"--variant {text!r} is not one this run can compare; use one of {choices}")
    return name, value


def with_variants(models: Sequence[ModelUnderTest], variants: Sequence[str]) -> tuple[ModelUnderTest, ...]:
    """Each model once per value of the setting a ``--variant`` names, rows side by side and labelled
    by it: ``--variant context=function`` gives ``qwen3-coder-30b (context=diff)`` and
    ``qwen3-coder-30b (context=function)``, whatever ``REVIEWBOT_CONTEXT`` says."""
    if not any(parse_variant(text)[0] == "context" for text in variants):
        return tuple(models)
    return tuple(
        dataclasses.replace(
            model, label=f"{model.label} (context={value})", options=dataclasses.replace(model.options, context=value)
        )
        for model in models
        for value in VARIANTS["context"]
    )
