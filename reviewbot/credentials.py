"""The GitHub App that one-click setup registered, kept in ``REVIEWBOT_DATA_DIR`` (default
``./reviewbot-data``):

    app.pem     the App's private key                                             mode 0600
    app.json    its ID, slug, name, page, client ID, webhook secret and API URL   mode 0600

``app.json`` is written last, so its presence means a whole App was saved.

:func:`~reviewbot.settings.with_saved_app` (which :func:`~reviewbot.settings.load_settings` applies) fills in the App
settings the environment leaves unset. The environment (and ``.env``) always wins, setting by
setting; the saved App is ignored as a whole when ``REVIEWBOT_GITHUB_APP_ID`` names another App,
so a key of one App is never paired with the ID of another.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from reviewbot.errors import ConfigError

KEY_FILE: Final = "app.pem"
APP_FILE: Final = "app.json"
_PRIVATE: Final = 0o600


@dataclass(frozen=True, slots=True)
class AppRegistration:
    """A GitHub App just registered from a manifest. ``pem`` and ``webhook_secret`` are secrets:
    keep them out of logs and pages (they are left out of ``repr``)."""

    id: int
    slug: str | None
    name: str
    html_url: str
    client_id: str
    pem: str = field(repr=False)
    webhook_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SavedApp:
    """An App as one-click setup saved it; ``webhook_secret`` stays out of ``repr``."""

    app_id: str
    slug: str | None
    name: str
    html_url: str
    client_id: str
    github_api_url: str
    key_path: Path
    webhook_secret: str = field(repr=False)


def saved_app_exists(data_dir: Path) -> bool:
    """Whether one-click setup saved an App in ``data_dir`` (by this process or another)."""
    return (data_dir / APP_FILE).is_file()


def load_saved_app(data_dir: Path) -> SavedApp | None:
    """The App saved in ``data_dir``; None when none was. A damaged save raises :class:`ConfigError`."""
    path = data_dir / APP_FILE
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{path} cannot be read ({reason}); fix its permissions or set the App settings") from None
    try:
        data = json.loads(text)
        saved = SavedApp(
            app_id=str(_field(data, "app_id", int)),
            slug=_field(data, "slug", str, optional=True),
            name=_field(data, "name", str),
            html_url=_field(data, "html_url", str),
            client_id=_field(data, "client_id", str),
            github_api_url=_field(data, "github_api_url", str),
            key_path=data_dir / KEY_FILE,
            webhook_secret=_field(data, "webhook_secret", str),
        )
    except (ValueError, TypeError):
        raise ConfigError(
            f"{path} is not an App saved by one-click setup; remove it and run the setup again, "
            "or set the App settings (REVIEWBOT_GITHUB_APP_ID, …)"
        ) from None
    if not saved.key_path.is_file():
        raise ConfigError(f"{saved.key_path} is missing beside {path}; remove {path} and run the setup again")
    return saved


def _field(data: Any, name: str, kind: type[Any], *, optional: bool = False) -> Any:
    if not isinstance(data, dict):
        raise TypeError("not an object")
    value = data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) or value == "":
        raise TypeError(name)
    return value


def prepare_data_dir(data_dir: Path) -> None:
    """Create ``data_dir`` (mode 0700) unless it exists, and make sure files can be written in it:
    better to refuse before the App is registered on GitHub than to lose its key after."""
    variable = f"REVIEWBOT_DATA_DIR={data_dir}"
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{variable} cannot be created ({exc.strerror or type(exc).__name__})") from None
    if not data_dir.is_dir() or not os.access(data_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"{variable} is not a directory reviewbot can write in")


def save_app(data_dir: Path, registration: AppRegistration, github_api_url: str) -> None:
    """Save a newly registered App in ``data_dir`` (:func:`load_saved_app` reads it back): the key,
    then ``app.json``, each 0600 and replaced atomically. Raises :class:`ConfigError` when the
    files cannot be written."""
    prepare_data_dir(data_dir)
    record = {
        "app_id": registration.id,
        "slug": registration.slug,
        "name": registration.name,
        "html_url": registration.html_url,
        "client_id": registration.client_id,
        "github_api_url": github_api_url,
        "webhook_secret": registration.webhook_secret,
        "registered_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        _write_private(data_dir / KEY_FILE, registration.pem)
        _write_private(data_dir / APP_FILE, json.dumps(record, indent=2) + "\n")
    except OSError as exc:
        raise ConfigError(
            f"the App could not be saved in REVIEWBOT_DATA_DIR={data_dir} ({exc.strerror or type(exc).__name__})"
        ) from None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner alone, all or nothing."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, _PRIVATE)  # the umask may only have taken bits away; be explicit
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
