"""One-click setup: ``reviewbot serve`` registers its own GitHub App from a manifest.

``serve`` started with none of the App settings (``REVIEWBOT_GITHUB_APP_ID``,
``REVIEWBOT_GITHUB_PRIVATE_KEY(_PATH)``, ``REVIEWBOT_WEBHOOK_SECRET``) and no App saved in
``REVIEWBOT_DATA_DIR`` runs in *setup mode* and logs a link with a one-time token, as Jupyter
does, so that only whoever reads the log can register the App. It then serves only:

===========================  ===================================================================
``GET /setup?token=T``       a form: the App's name, an optional organisation, the public URL
``POST /setup``              a page that posts the manifest to GitHub's "new App" page at once,
                             with a one-time ``state`` (valid for the hour GitHub allows)
``GET /setup/callback``      where GitHub sends the browser back (``?code=…&state=…``): the state is
                             checked, the code exchanged (``POST /app-manifests/{code}/conversions``)
                             and the App saved (:mod:`reviewbot.credentials`); the page links to the
                             App and to installing it
``GET /healthz``             ``{"status": "setup"}``
``POST /webhook``            503: GitHub pings a new App before the browser comes back
===========================  ===================================================================

Once the App is saved the same process leaves setup mode and starts serving it (uvicorn stops
after the answer and starts again on the same port in normal mode); a restart uses the saved App
too. In normal mode the ``/setup`` routes answer 403 (:func:`closed_routes`), so a public server
cannot be registered again by someone else. No page and no log line shows the key or a secret.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from reviewbot import logs
from reviewbot.credentials import prepare_data_dir, save_app, saved_app_exists
from reviewbot.errors import ConfigError, ReviewbotError
from reviewbot.github.manifest import convert_app_manifest
from reviewbot.settings import Settings, with_saved_app

log = logging.getLogger("reviewbot.setup")

#: Least privilege: what a review needs, as in ``deploy/app-manifest.json``.
PERMISSIONS: Final[Mapping[str, str]] = {"pull_requests": "write", "contents": "read", "metadata": "read"}
EVENTS: Final = ("pull_request", "issue_comment")
DESCRIPTION: Final = "Reviews pull requests with a cheap code model and reports what each review cost."
DEFAULT_NAME: Final = "reviewbot"
#: GitHub wants the three steps of the manifest flow done within an hour.
STATE_LIFETIME: Final = 3600.0
MAX_PENDING_STATES: Final = 32
MAX_FORM_BYTES: Final = 16 * 1024
MAX_NAME_LENGTH: Final = 34  # GitHub's limit for an App's name
_ORGANIZATION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
_CODE = re.compile(r"[A-Za-z0-9._-]{1,200}")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]{1,255}")


def needs_setup(settings: Settings) -> bool:
    """True when none of the App settings is set (nor saved): ``serve`` starts in setup mode.
    Some but not all of them is a mistake that :func:`~reviewbot.service.server.check_service_settings` names."""
    return (
        not settings.github_app_id
        and settings.github_private_key is None
        and settings.github_private_key_path is None
        and settings.webhook_secret is None
    )


# -- the manifest -----------------------------------------------------------------------------


def github_web_url(api_url: str) -> str:
    """GitHub's web address for its REST API URL: ``https://api.github.com`` → ``https://github.com``,
    ``https://api.X.ghe.com`` → ``https://X.ghe.com``, ``https://HOST/api/v3`` (Enterprise Server) →
    ``https://HOST``; any other URL is taken as both."""
    parts = urlsplit(api_url.rstrip("/"))
    path = parts.path.removesuffix("/api/v3")
    host = parts.netloc.removeprefix("api.") if parts.netloc.startswith("api.") and not path else parts.netloc
    return f"{parts.scheme}://{host}{path}"


def new_app_url(api_url: str, organization: str | None = None) -> str:
    """GitHub's "register a new App" page, for the signed-in user or for ``organization``."""
    web = github_web_url(api_url)
    if organization:
        return f"{web}/organizations/{quote(organization, safe='')}/settings/apps/new"
    return f"{web}/settings/apps/new"


def build_manifest(name: str, public_url: str) -> dict[str, object]:
    """The App manifest: webhooks to ``public_url``/webhook, GitHub back to ``public_url``/setup/callback."""
    base = public_url.rstrip("/")
    return {
        "name": name,
        "url": base,
        "description": DESCRIPTION,
        "hook_attributes": {"url": f"{base}/webhook", "active": True},
        "redirect_url": f"{base}/setup/callback",
        "public": False,
        "default_permissions": dict(PERMISSIONS),
        "default_events": list(EVENTS),
    }


def check_public_url(value: str) -> str | None:
    """``value`` as a base URL (no trailing slash), or None when it is not an http(s) URL
    without query or fragment."""
    value = value.strip().rstrip("/")
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        return None
    if any(char.isspace() for char in value) or "@" in parts.netloc:
        return None
    return value


def suggested_public_url(request: Request, settings: Settings) -> str:
    """``REVIEWBOT_PUBLIC_URL``, else the URL this request came to, as a proxy in front saw it
    (``X-Forwarded-Proto`` and ``X-Forwarded-Host``). Only a suggestion: the operator confirms it."""
    if settings.public_url:
        return settings.public_url
    proto = _first(request.headers.get("x-forwarded-proto")) or request.url.scheme
    host = _first(request.headers.get("x-forwarded-host")) or request.headers.get("host") or request.url.netloc
    if proto not in ("http", "https") or not _HOST.fullmatch(host):
        proto, host = request.url.scheme, request.url.netloc
    return f"{proto}://{host}"


def _first(value: str | None) -> str:
    return value.split(",", 1)[0].strip() if value else ""


# -- one-time states --------------------------------------------------------------------------


class StateBook:
    """The ``state`` values handed to GitHub: each redeemable once, within ``lifetime`` seconds.
    At most ``limit`` are kept; past it the oldest is forgotten."""

    def __init__(
        self,
        lifetime: float = STATE_LIFETIME,
        *,
        limit: int = MAX_PENDING_STATES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lifetime = lifetime
        self._limit = limit
        self._clock = clock
        self._states: OrderedDict[str, float] = OrderedDict()  # state → when it expires

    def issue(self) -> str:
        now = self._clock()
        for state, expires in list(self._states.items()):
            if expires <= now:
                del self._states[state]
        while len(self._states) >= self._limit:
            self._states.popitem(last=False)
        state = secrets.token_urlsafe(32)
        self._states[state] = now + self._lifetime
        return state

    def redeem(self, state: str) -> bool:
        """True once for a state issued less than ``lifetime`` ago; it is forgotten either way."""
        expires = self._states.pop(state, None)
        return expires is not None and self._clock() < expires


# -- the pages --------------------------------------------------------------------------------


class SetupSite:
    """The setup-mode web app. ``token`` guards the form; ``on_registered`` is called with the
    settings of the saved App once its page has been sent."""

    def __init__(
        self,
        settings: Settings,
        *,
        token: str,
        on_registered: Callable[[Settings], None] | None = None,
        states: StateBook | None = None,
    ) -> None:
        self._settings = settings
        self._token = token.encode()
        self._on_registered = on_registered
        self._states = states or StateBook()
        self._lock = asyncio.Lock()
        self.registered: Settings | None = None

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/setup", self.form, methods=["GET"]),
                Route("/setup", self.start, methods=["POST"]),
                Route("/setup/callback", self.callback, methods=["GET"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/webhook", self.webhook, methods=["POST"]),
            ]
        )

    def _closed(self) -> bool:
        return self.registered is not None or saved_app_exists(self._settings.data_dir)

    def _token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self._token)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "setup" if self.registered is None else "ok"})

    async def webhook(self, request: Request) -> Response:
        return JSONResponse({"error": "reviewbot is not set up as a GitHub App yet"}, status_code=503)

    async def form(self, request: Request) -> Response:
        if self._closed():
            return closed_page()
        if not self._token_ok(request.query_params.get("token")):
            return _no_token_page()
        values = {"name": DEFAULT_NAME, "organization": "", "public_url": suggested_public_url(request, self._settings)}
        return self._form_page(values, request.query_params["token"], [])

    async def start(self, request: Request) -> Response:
        if self._closed():
            return closed_page()
        fields = await _read_form(request)
        if fields is None:
            return _page("Setup", "<p>Send the setup form, please.</p>", status=400)
        if not self._token_ok(fields.get("token")):
            return _no_token_page()
        name = fields.get("name", "").strip()
        organization = fields.get("organization", "").strip()
        public_url = check_public_url(fields.get("public_url", ""))
        problems = []
        if not 0 < len(name) <= MAX_NAME_LENGTH:
            problems.append(f"The App's name must be 1 to {MAX_NAME_LENGTH} characters long.")
        if organization and not _ORGANIZATION.fullmatch(organization):
            problems.append("The organisation must be an account name (letters, digits and hyphens), or empty.")
        if public_url is None:
            problems.append("The public URL must be an http(s) URL without query or fragment.")
        if problems or public_url is None:
            values = {"name": name, "organization": organization, "public_url": fields.get("public_url", "")}
            return self._form_page(values, fields["token"], problems, status=400)
        state = self._states.issue()
        manifest = build_manifest(name, public_url)
        action = f"{new_app_url(self._settings.github_api_url, organization or None)}?{urlencode({'state': state})}"
        log.info(
            "setup: sending the browser to GitHub to register %r (webhooks to %s/webhook)%s",
            name,
            public_url,
            f" for the organisation {organization}" if organization else "",
        )
        nonce = secrets.token_urlsafe(16)
        body = (
            f'<form id="register" method="post" action="{_e(action)}">'
            f'<input type="hidden" name="manifest" value="{_e(json.dumps(manifest))}">'
            "<p>Taking you to GitHub to create the App…</p>"
            '<button type="submit">Continue on GitHub</button></form>'
            f"<script nonce=\"{nonce}\">document.getElementById('register').submit();</script>"
        )
        return _page("Registering the App on GitHub", body, nonce=nonce)

    async def callback(self, request: Request) -> Response:
        if self._closed():
            return closed_page()
        if not self._states.redeem(request.query_params.get("state", "")):
            log.warning("setup: a callback with an unknown, expired or used state was refused")
            return _page(
                "Setup link expired",
                "<p>This link is unknown, expired or already used. Start again from the setup link in "
                "reviewbot's log.</p>",
                status=400,
            )
        code = request.query_params.get("code", "")
        if not _CODE.fullmatch(code):
            return _page("Setup", "<p>GitHub's answer has no usable code. Start again.</p>", status=400)
        async with self._lock:
            if self._closed():
                return closed_page()
            return await self._register(code)

    async def _register(self, code: str) -> Response:
        settings = self._settings
        try:
            registration = await convert_app_manifest(settings.github_api_url, code)
        except ReviewbotError as exc:
            # The code may still be good after a 5xx: keep it out of the log and the page.
            reason = str(exc).replace(code, "{code}")
            log.error("setup: GitHub did not hand over the new App: %s", reason)
            return _page(
                "GitHub did not hand over the App",
                f"<p>{_e(reason)}</p><p>A code works once, within an hour. Start again from the setup link "
                "in reviewbot's log.</p>",
                status=502,
            )
        data_dir = settings.data_dir.resolve()
        try:
            save_app(settings.data_dir, registration, settings.github_api_url)
        except ConfigError as exc:
            log.error("setup: the App %s was registered but could not be saved: %s", registration.html_url, exc)
            return _page(
                "The App could not be saved",
                f'<p>GitHub registered <a href="{_e(registration.html_url)}">{_e(registration.name)}</a>, '
                f"but {_e(str(exc))}.</p><p>Delete the App on GitHub (its settings, Advanced), fix the "
                "directory and start again.</p>",
                status=500,
            )
        registered = with_saved_app(settings)
        protect_secrets(registered)
        self.registered = registered
        log.info("setup: registered the App %s (%s); saved in %s", registration.name, registration.html_url, data_dir)
        install = f"{registration.html_url.rstrip('/')}/installations/new"
        body = (
            f'<p>GitHub registered <a href="{_e(registration.html_url)}">{_e(registration.name)}</a> '
            f"(App ID {registration.id}). Its private key and webhook secret are saved in "
            f"<code>{_e(str(data_dir))}</code>, readable by reviewbot's user alone: back that directory up, "
            "or move the values into REVIEWBOT_GITHUB_APP_ID, REVIEWBOT_GITHUB_PRIVATE_KEY_PATH and "
            "REVIEWBOT_WEBHOOK_SECRET.</p>"
            f'<p><a href="{_e(install)}"><strong>Install it on repositories</strong></a>, then open a pull '
            "request.</p>"
            "<p>reviewbot is switching to serving the App now; if it stops instead, its log says what is "
            "missing (e.g. REVIEWBOT_API_KEY): start it again and it uses the saved App.</p>"
        )
        task = BackgroundTask(self._on_registered, registered) if self._on_registered is not None else None
        return _page("The App is registered", body, background=task)

    def _form_page(self, values: Mapping[str, str], token: str, problems: list[str], status: int = 200) -> Response:
        notes = "".join(f'<p class="problem">{_e(problem)}</p>' for problem in problems)
        if self._settings.api_key is None:
            notes += "<p>Note: REVIEWBOT_API_KEY is not set; reviews need it once the App is registered.</p>"
        where = _e(str(self._settings.data_dir.resolve()))
        body = (
            f"{notes}<p>reviewbot registers a GitHub App for itself from a manifest: pull requests read "
            "&amp; write, contents and metadata read; the events pull request and issue comment. GitHub "
            f"shows you the App before creating it. Its key and webhook secret are saved in <code>{where}</code>."
            '</p><form method="post" action="setup">'
            f'<input type="hidden" name="token" value="{_e(token)}">'
            f'<p><label>App name (unique on GitHub)<br><input name="name" maxlength="{MAX_NAME_LENGTH}" '
            f'required value="{_e(values["name"])}"></label></p>'
            '<p><label>Organisation (empty: your own account)<br><input name="organization" '
            f'value="{_e(values["organization"])}"></label></p>'
            "<p><label>Public URL GitHub sends webhooks to (this server, as GitHub reaches it)<br>"
            f'<input name="public_url" size="50" required value="{_e(values["public_url"])}"></label></p>'
            '<p><button type="submit">Register on GitHub</button></p></form>'
        )
        return _page("Set up reviewbot as a GitHub App", body, status=status)


def closed_routes() -> list[Route]:
    """The setup routes once an App is configured: each answers 403."""

    async def closed(request: Request) -> Response:
        return closed_page()

    return [
        Route("/setup", closed, methods=["GET", "POST"]),
        Route("/setup/callback", closed, methods=["GET"]),
    ]


def closed_page() -> Response:
    return _page(
        "Setup is closed",
        "<p>reviewbot already serves a GitHub App, so setup is closed. To register another App, stop "
        "reviewbot, remove the App settings and the saved App (REVIEWBOT_DATA_DIR), and start it again.</p>",
        status=403,
    )


def _no_token_page() -> Response:
    return _page(
        "Setup",
        "<p>Open the setup link reviewbot printed in its log when it started (it carries a one-time token).</p>",
        status=403,
    )


_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
    "input{font:inherit;padding:.3rem;width:100%;box-sizing:border-box}button{font:inherit;padding:.4rem 1rem}"
    ".problem{color:#b00020}"
)


def _page(
    title: str, body: str, *, status: int = 200, nonce: str | None = None, background: BackgroundTask | None = None
) -> HTMLResponse:
    script = f" 'nonce-{nonce}'" if nonce else " 'none'"
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f'<meta name="viewport" content="width=device-width"><style>{_STYLE}</style></head>'
        f"<body><h1>{_e(title)}</h1>{body}</body></html>"
    )
    headers = {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'unsafe-inline'; script-src{script}; base-uri 'none'; "
            "frame-ancestors 'none'"
        ),
        # The callback's URL holds the code: no Referer to the pages it links to.
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return HTMLResponse(document, status_code=status, headers=headers, background=background)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


async def _read_form(request: Request) -> dict[str, str] | None:
    """An ``application/x-www-form-urlencoded`` body of at most :data:`MAX_FORM_BYTES`; None otherwise."""
    if request.headers.get("content-type", "").split(";", 1)[0].strip() != "application/x-www-form-urlencoded":
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=16))
    except (UnicodeDecodeError, ValueError):
        return None


def protect_secrets(settings: Settings) -> None:
    """Redact the secrets in ``settings`` from every line the root logger's handlers write from now
    on (they were set up before the App existed)."""
    values = logs.secret_values(settings)
    for handler in logging.getLogger().handlers:
        handler.addFilter(logs.RedactSecrets(values))


# -- setup mode -------------------------------------------------------------------------------


def run_setup(settings: Settings, config: Callable[[Starlette], uvicorn.Config]) -> Settings | None:
    """Serve the setup pages until an App is registered, then return the settings with it; None
    when the server stopped first (a signal)."""
    prepare_data_dir(settings.data_dir)
    token = secrets.token_urlsafe(24)
    servers: list[uvicorn.Server] = []

    def registered(_: Settings) -> None:
        for server in servers:
            server.should_exit = True

    site = SetupSite(settings, token=token, on_registered=registered)
    uvicorn_config = config(site.app())
    servers.append(uvicorn.Server(uvicorn_config))
    host = uvicorn_config.host if uvicorn_config.host not in ("0.0.0.0", "::", "") else "localhost"  # noqa: S104
    base = settings.public_url or f"http://{host}:{uvicorn_config.port}"
    log.warning(
        "no GitHub App is configured: setup mode. To register one, open %s/setup?token=%s (the App is saved in %s)",
        base,
        token,
        settings.data_dir.resolve(),
    )
    if settings.api_key is None:
        log.warning("REVIEWBOT_API_KEY is not set: reviews need it once the App is registered")
    servers[0].run()
    if site.registered is not None:
        log.info("setup done: serving the GitHub App")
    return site.registered
