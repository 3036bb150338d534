"""The one reader of the environment: ``REVIEWBOT_*`` variables and a ``.env`` file.

The usual ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` are honoured as fallbacks, so an
environment already set up for vLLM, Ollama, LM Studio, llama.cpp, LiteLLM or OpenRouter works
unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import re
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Final, Literal, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from reviewbot.credentials import load_saved_app
from reviewbot.errors import ConfigError
from reviewbot.severity import Severity

log = logging.getLogger("reviewbot.settings")

DEFAULT_BASE_URL = "https://global-apis.com/v1"
DEFAULT_MODEL = "qwen3-coder-30b"

#: The least REVIEWBOT_RETENTION_DAYS: a delivery must be remembered as long as GitHub may redeliver
#: it, which is 3 days on GitHub.com and 7 on GitHub Enterprise Server
#: (https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks).
MIN_RETENTION_DAYS = 7

#: One entry of REVIEWBOT_WEBHOOK_ALLOWED_IPS: a network, or ``github`` for GitHub's webhook ranges.
AllowedSource = IPv4Network | IPv6Network | Literal["github"]
#: The reverse proxies trusted when REVIEWBOT_FORWARDED_ALLOW_IPS is unset: one on the same machine.
LOOPBACK_PROXIES = "127.0.0.1,::1"
#: What ``*`` in REVIEWBOT_FORWARDED_ALLOW_IPS stands for: a proxy at any address.
EVERY_ADDRESS: Final = (IPv4Network("0.0.0.0/0"), IPv6Network("::/0"))


class FallbackModel(BaseModel):
    """A model tried when a request to the configured one fails: on its own endpoint if it names
    one (with its own key), else on ``REVIEWBOT_BASE_URL``; priced by its own prices."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key: SecretStr | None = None
    input_price: float | None = Field(default=None, ge=0)
    output_price: float | None = Field(default=None, ge=0)

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL; use e.g. https://api.openai.com/v1")
        return value.rstrip("/") if value is not None else None


class PriceOverride(BaseSettings):
    """A price set by the operator, USD per million tokens; either side may stay unknown."""

    model_config = SettingsConfigDict(extra="forbid")

    input: float | None = Field(default=None, ge=0)
    output: float | None = Field(default=None, ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class Settings(BaseSettings):
    """Everything an operator can set. Each field is ``REVIEWBOT_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="REVIEWBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("REVIEWBOT_API_KEY", "OPENAI_API_KEY"),
        description="API key of the model endpoint (falls back to OPENAI_API_KEY).",
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        validation_alias=AliasChoices("REVIEWBOT_BASE_URL", "OPENAI_BASE_URL"),
        description="Base URL of an OpenAI-compatible API, up to and including /v1 (falls back to OPENAI_BASE_URL).",
    )
    model: str = Field(default=DEFAULT_MODEL, description="Model name the endpoint knows.")
    context_window: int = Field(
        default=32_768,
        ge=2_048,
        description="Context window of the model in tokens; requests are packed to fit inside it.",
    )
    max_output_tokens: int = Field(
        default=4_096,
        ge=256,
        description="Tokens reserved for each answer (sent as max_tokens); unset, a quarter of the context window "
        "up to 4,096.",
    )
    concurrency: int = Field(default=4, ge=1, le=64, description="Model requests in flight at once.")
    timeout: float = Field(default=120.0, gt=0, description="Seconds to wait for one model answer.")
    max_retries: int = Field(
        default=3, ge=0, le=10, description="Retries of a request after 429, 5xx or a timeout (honours Retry-After)."
    )
    disable_thinking: bool = Field(
        default=True,
        description="Ask thinking-capable models to answer without a reasoning phase (billed tokens).",
    )
    temperature: float = Field(default=0.1, ge=0, le=2, description="Sampling temperature.")
    min_severity: Severity = Field(default=Severity.LOW, description="Findings below this severity are left out.")
    max_findings: int = Field(default=30, ge=1, description="Most findings kept per review; the most severe win.")
    include_nits: bool = Field(default=False, description="Also ask for style and naming remarks.")
    max_cost: float | None = Field(
        default=None, gt=0, description="Stop sending requests once the estimated cost in USD would pass this."
    )
    max_input_tokens: int | None = Field(
        default=None, gt=0, description="Stop sending requests once the estimated prompt tokens would pass this."
    )
    monthly_budget_per_installation: float | None = Field(
        default=None,
        gt=0,
        description="USD one App installation may spend on reviews per calendar month (UTC); past it, a note instead.",
    )
    monthly_budget_per_repo: float | None = Field(
        default=None,
        gt=0,
        description="USD one repository may spend on reviews per calendar month (UTC); a repo may only lower it.",
    )
    max_file_lines: int = Field(
        default=5_000, ge=1, description="Files with more changed lines than this are skipped as too large."
    )
    include: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated globs; when set, only matching files are reviewed."
    )
    exclude: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated globs of files never to review."
    )
    extra_instructions: str = Field(default="", description="Text appended to the reviewer's instructions.")
    context: Literal["diff", "function"] = Field(
        default="diff",
        description="What the model sees of each hunk: `diff` (the hunk alone), or `function` (also the unchanged "
        "rest of its enclosing function or class in the head revision, as context it cannot comment on).",
    )
    context_max_tokens: int = Field(
        default=1_000, ge=0, description="Most tokens of unchanged code added around one hunk with `function` context."
    )
    input_price: float | None = Field(
        default=None, ge=0, description="Input price of the configured model, USD per million tokens."
    )
    output_price: float | None = Field(
        default=None, ge=0, description="Output price of the configured model, USD per million tokens."
    )
    prices: dict[str, PriceOverride] = Field(
        default_factory=dict,
        description='JSON object of prices by model, e.g. {"my-model": {"input": 0.1, "output": 0.4}} '
        '(also "cached_input", the rate of prompt-cache hits).',
    )
    price_provider: str | None = Field(
        default=None,
        description="genai-prices provider whose prices apply (e.g. openrouter); unset, the one at REVIEWBOT_BASE_URL.",
    )
    fallback_models: Annotated[list[FallbackModel], NoDecode] = Field(
        default_factory=list,
        description="Models tried in order when a request fails with 5xx, 429 past its retries, a timeout or an "
        "unknown model: `model` or `model@base_url`, comma-separated, or a JSON list of objects with model, "
        "base_url, api_key, input_price, output_price.",
    )
    compare_with: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated models the cost note compares against, priced by genai-prices "
        "(e.g. gpt-4o,claude-sonnet-4); unset, GPT-4o and Claude 3.5 Sonnet at the seed's prices.",
    )

    # -- the GitHub App service -------------------------------------------------------------
    github_app_id: str | None = Field(default=None, description="The GitHub App's ID (from its settings page).")
    github_private_key_path: Path | None = Field(
        default=None, description="Path of the App's private key (.pem) downloaded from its settings page."
    )
    github_private_key: SecretStr | None = Field(
        default=None, description="The App's private key itself (PEM text), instead of a path."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="The App's webhook secret; deliveries without a valid signature get 401."
    )
    github_api_url: str = Field(
        default="https://api.github.com",
        description="GitHub REST API base URL; for GitHub Enterprise Server use https://HOST/api/v3.",
    )
    github_app_slug: str | None = Field(
        default=None, description="The App's slug, for `@slug review` commands (asked of GitHub when unset)."
    )
    public_url: str | None = Field(
        default=None,
        description="The URL GitHub reaches reviewbot at (e.g. https://reviewbot.example.com), for one-click setup.",
    )
    data_dir: Path = Field(
        default=Path("reviewbot-data"),
        description="Where one-click setup saves the App (ID, key, webhook secret); unset App settings use it.",
    )
    github_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("REVIEWBOT_GITHUB_TOKEN", "GITHUB_TOKEN"),
        description="A personal token for `reviewbot review --pr` (falls back to GITHUB_TOKEN).",
    )
    database_url: str = Field(
        default="sqlite:///reviewbot.db",
        description="Where deliveries, jobs and reviews are kept: a SQLite file, or postgresql://… for replicas.",
    )
    host: str = Field(default="127.0.0.1", description="Address `reviewbot serve` listens on.")
    port: int = Field(
        default=8000,
        ge=1,
        le=65535,
        validation_alias=AliasChoices("REVIEWBOT_PORT", "PORT"),
        description="Port `reviewbot serve` listens on (falls back to PORT).",
    )
    webhook_read_timeout: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="Seconds `reviewbot serve` waits for a request's head, and then for a webhook's body "
        "(GitHub gives up after 10 s); a slower client is cut off.",
    )
    webhook_allowed_ips: Annotated[list[AllowedSource], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated addresses and networks (CIDR, IPv4 or IPv6) that may post webhooks, and "
        "`github` for the `hooks` ranges of GitHub.com's meta API (fetched at start, then hourly); others get 403. "
        "Unset, everyone may.",
    )
    forwarded_allow_ips: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default=LOOPBACK_PROXIES,
        validate_default=True,
        validation_alias=AliasChoices("REVIEWBOT_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS"),
        description="Comma-separated addresses and networks of the reverse proxies whose X-Forwarded-For "
        "`reviewbot serve` believes (falls back to uvicorn's FORWARDED_ALLOW_IPS); empty, none; `*`, any (not "
        "beside REVIEWBOT_WEBHOOK_ALLOWED_IPS).",
    )
    max_comments: int = Field(
        default=25, ge=1, le=100, description="Most inline comments in one GitHub review; the rest go in its body."
    )
    review_drafts: bool = Field(default=False, description="Also review draft pull requests.")
    allowed_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated models a repository may choose in .github/reviewbot.toml.",
    )
    job_attempts: int = Field(default=5, ge=1, le=50, description="Attempts at a review job before it is given up.")
    worker_poll_seconds: float = Field(
        default=1.0,
        ge=0.05,
        le=60,
        description="How often a worker looks for new jobs queued by another process (its own are started at once).",
    )
    job_lease_seconds: int = Field(
        default=60,
        ge=2,
        description="Seconds a worker's claim on a job lasts without renewal; a dead worker's job restarts after it.",
    )
    retention_days: int = Field(
        default=30,
        le=36_500,
        description="Days the worker keeps webhook deliveries and finished jobs before deleting them (at least 7: "
        "GitHub lets a delivery be redelivered for up to 7 days); 0 keeps them forever. Reviews and the cost "
        "ledger are always kept.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port `reviewbot serve` and `reviewbot worker` serve GET /metrics on, and nothing else; unset, "
        "`serve` serves it on REVIEWBOT_PORT with the webhook, to anyone who can reach that, and `worker` serves none.",
    )
    metrics_host: str | None = Field(
        default=None,
        min_length=1,
        description="Address the REVIEWBOT_METRICS_PORT listener binds, e.g. 127.0.0.1 or a private address while "
        "the webhook listens on 0.0.0.0; unset, REVIEWBOT_HOST.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log format of the service: `text`, or `json` (one object per line, with delivery, repo, pr, job).",
    )

    @model_validator(mode="after")
    def _scale_answer_reserve(self) -> Self:
        # 4,096 answer tokens from a 6,000-token window leave ~1.9k for the diff and instructions:
        # a pull request becomes dozens of requests, each repeating the instructions.
        if "max_output_tokens" not in self.model_fields_set:
            self.max_output_tokens = answer_reserve(self.context_window)
        return self

    @field_validator("fallback_models", mode="before")
    @classmethod
    def _read_fallbacks(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)  # a JSON error is reported as the variable's own
        models = []
        for part in filter(None, (piece.strip() for piece in text.split(","))):
            model, _, base_url = part.partition("@")
            models.append({"model": model.strip(), "base_url": base_url.strip() or None})
        return models

    @field_validator("include", "exclude", "allowed_models", "compare_with", mode="before")
    @classmethod
    def _split_globs(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_allowed_ips", "forwarded_allow_ips", mode="before")
    @classmethod
    def _read_networks(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list | tuple):
            return value
        if info.field_name == "webhook_allowed_ips":
            return [_allowed_source(item) if isinstance(item, str) else item for item in value if str(item).strip()]
        proxies: list[object] = []
        for item in value:
            if isinstance(item, str) and item.strip() == "*":
                proxies.extend(EVERY_ADDRESS)
            elif str(item).strip():
                proxies.append(_proxy(item) if isinstance(item, str) else item)
        return proxies

    @field_validator("retention_days")
    @classmethod
    def _check_retention(cls, value: int) -> int:
        if value != 0 and value < MIN_RETENTION_DAYS:
            raise ValueError(
                f"{value} days is less than the {MIN_RETENTION_DAYS} days GitHub lets a delivery be redelivered in; "
                f"set {MIN_RETENTION_DAYS} or more, or 0 to keep everything"
            )
        return value

    @field_validator("base_url", "github_api_url", "public_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL; use e.g. http://localhost:8000/v1")
        return value.rstrip("/")


def _allowed_source(text: str) -> AllowedSource:
    text = text.strip()
    if text.lower() == "github":
        return "github"
    return _network(text, "an address, a network such as 192.30.252.0/22, or github")


def _proxy(text: str) -> IPv4Network | IPv6Network:
    return _network(text.strip(), "an address, a network such as 10.0.0.0/8, or *")


def _network(text: str, what: str) -> IPv4Network | IPv6Network:
    """``text`` as a network, an IPv4-mapped one as IPv4; a ValueError saying it is not ``what``."""
    try:
        network = ip_network(text)  # strict: 10.0.0.1/8 is a typo, for the host or for its network
    except ValueError as exc:
        if "host bits" in str(exc):  # "10.0.0.1/8 has host bits set"
            raise ValueError(f"{exc}; write the network's first address, or the address alone") from None
        raise ValueError(f"{text!r} is not {what}") from None
    mapped = network.network_address.ipv4_mapped if isinstance(network, IPv6Network) else None
    if mapped is not None and network.prefixlen >= 96:  # ::ffff:a.b.c.d: peers are matched as IPv4
        return IPv4Network((mapped, network.prefixlen - 96))
    return network


def variable_name(field: str) -> str:
    """The environment variable of a setting: its first alias, else ``REVIEWBOT_<FIELD>``."""
    alias = Settings.model_fields[field].validation_alias if field in Settings.model_fields else None
    return alias.choices[0] if isinstance(alias, AliasChoices) else f"REVIEWBOT_{field.upper()}"  # type: ignore[return-value]


def _error_variable(loc: tuple[int | str, ...]) -> str:
    """The variable a validation error is about: an alias is its own name (``REVIEWBOT_BASE_URL``),
    a field name gets the prefix, and a nested place follows it (``REVIEWBOT_PRICES.my-model``)."""
    head, *rest = (str(part) for part in loc)
    name = head if head.isupper() else variable_name(head)
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices) and name in alias.choices:
            # The fallback the user set (OPENAI_BASE_URL), not the first name the field has.
            name = next((str(choice) for choice in alias.choices if str(choice) in os.environ), name)
    return ".".join([name, *rest])


def answer_reserve(context_window: int) -> int:
    """The answer tokens kept by default: a quarter of the window, at most 4,096."""
    return min(4_096, context_window // 4)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with command-line values on top, and the App saved by
    one-click setup in ``REVIEWBOT_DATA_DIR`` for what they leave unset (see :mod:`reviewbot.credentials`).

    A bad value raises :class:`ConfigError` naming the variable, never echoing a secret.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return with_saved_app(Settings(**given))  # type: ignore[arg-type]
    except SettingsError as exc:
        # pydantic-settings decodes a JSON value (REVIEWBOT_PRICES) before validating it.
        field = re.search(r'field "(\w+)"', str(exc))
        name = variable_name(field.group(1)) if field else "a REVIEWBOT_ variable"
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        raise ConfigError(
            f'{name} is not valid JSON{cause}; write an object like {{"my-model": {{"input": 0.1, "output": 0.4}}}}'
        ) from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = _error_variable(error["loc"])
            problems.append(f"{name}: {error['msg']}")
        raise ConfigError("; ".join(problems)) from None


def with_saved_app(settings: Settings) -> Settings:
    """``settings`` with the App saved in ``REVIEWBOT_DATA_DIR`` for each App setting they leave
    unset (ID, key, webhook secret, slug, and the API URL it was registered on)."""
    saved = load_saved_app(settings.data_dir)
    if saved is None:
        return settings
    if settings.github_app_id and settings.github_app_id != saved.app_id:
        log.warning(
            "REVIEWBOT_GITHUB_APP_ID=%s is not the App saved in %s (%s): the saved App is not used",
            settings.github_app_id,
            settings.data_dir,
            saved.app_id,
        )
        return settings
    update: dict[str, object] = {}
    if not settings.github_app_id:
        update["github_app_id"] = saved.app_id
    if settings.github_private_key is None and settings.github_private_key_path is None:
        update["github_private_key_path"] = saved.key_path
    if settings.webhook_secret is None:
        update["webhook_secret"] = SecretStr(saved.webhook_secret)
    if not settings.github_app_slug and saved.slug:
        update["github_app_slug"] = saved.slug
    if "github_api_url" not in settings.model_fields_set:
        update["github_api_url"] = saved.github_api_url
    return settings.model_copy(update=update)
