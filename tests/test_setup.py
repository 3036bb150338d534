"""One-click setup: registering the GitHub App from a manifest, and serving it afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from starlette.types import ASGIApp

from fake_github import APP_ID, APP_SLUG, WEB, FakeGitHub
from fake_openai import FakeOpenAI
from guids import guid
from reviewbot.credentials import APP_FILE, KEY_FILE, AppRegistration, save_app
from reviewbot.errors import ConfigError, GitHubNotFound
from reviewbot.github.manifest import convert_app_manifest
from reviewbot.service import setup as app_setup
from reviewbot.service.app import create_app
from reviewbot.service.server import check_service_settings
from reviewbot.service.setup import EVENTS, PERMISSIONS, SetupSite, StateBook, github_web_url, needs_setup, new_app_url
from reviewbot.settings import Settings, load_settings
from reviewbot.store.store import open_store
from test_service_e2e import (
    BASE,
    BUG,
    HEAD,
    LEEWAY,
    REPO,
    Service,
    answer_with,
    free_port,
    payload,
    stop,
    wait_for,
)

TOKEN = "setup-token-for-tests"
ServeApp = Callable[[ASGIApp], AbstractContextManager[str]]
DEPLOY_MANIFEST = Path(__file__).resolve().parents[1] / "deploy" / "app-manifest.json"


# -- helpers ----------------------------------------------------------------------------------


class Forms(HTMLParser):
    """The forms of a page: action, method and the value of each named input."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({"action": values.get("action", ""), "method": values.get("method", ""), "inputs": {}})
        elif tag == "input" and self.forms and "name" in values:
            self.forms[-1]["inputs"][values["name"]] = values.get("value", "")

    @classmethod
    def only(cls, text: str) -> dict[str, Any]:
        (form,) = cls(text).forms
        return form


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Site:
    """A :class:`SetupSite` served on loopback, with a client, its clock and what it told ``on_registered``."""

    def __init__(self, settings: Settings, serve_app: ServeApp) -> None:
        self.settings = settings
        self.clock = Clock()
        self.registered: list[Settings] = []
        self.site = SetupSite(
            settings, token=TOKEN, on_registered=self.registered.append, states=StateBook(clock=self.clock)
        )
        self._stack = ExitStack()
        self.url = self._stack.enter_context(serve_app(self.site.app()))
        self.client = self._stack.enter_context(httpx.Client(base_url=self.url, timeout=10))

    def __enter__(self) -> Site:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def start(self, public_url: str = "https://bot.example.com", **fields: str) -> tuple[str, dict[str, Any]]:
        """POST the form; the state and the manifest GitHub would receive."""
        data = {"token": TOKEN, "name": "reviewbot", "organization": "", "public_url": public_url, **fields}
        response = self.client.post("/setup", data=data)
        assert response.status_code == 200, response.text
        form = Forms.only(response.text)
        assert form["method"] == "post"
        (state,) = parse_qs(urlsplit(form["action"]).query)["state"]
        return state, json.loads(form["inputs"]["manifest"])

    def callback(self, code: str, state: str) -> httpx.Response:
        return self.client.get("/setup/callback", params={"code": code, "state": state})


@pytest.fixture
def settings(fake_github: FakeGitHub, tmp_path: Path) -> Settings:
    return Settings(github_api_url=fake_github.api_url, data_dir=tmp_path / "data", api_key="sk-test")


@pytest.fixture
def site(settings: Settings, serve_app: ServeApp) -> Iterator[Site]:
    with Site(settings, serve_app) as running:
        yield running


def saved_files(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.data_dir.iterdir()) if settings.data_dir.exists() else []


@pytest.fixture
def clean_env(clean_environment: None, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """As for a fresh `reviewbot serve`: the shared clean environment, and no PORT either."""
    monkeypatch.delenv("PORT", raising=False)
    return monkeypatch


# -- the manifest -----------------------------------------------------------------------------


def test_the_manifest_asks_for_what_deploy_app_manifest_lists_and_no_more() -> None:
    deploy = json.loads(DEPLOY_MANIFEST.read_text("utf-8"))
    assert deploy["default_permissions"] == dict(PERMISSIONS)
    assert deploy["default_events"] == list(EVENTS)
    assert dict(PERMISSIONS) == {"pull_requests": "write", "contents": "read", "metadata": "read"}


@pytest.mark.parametrize(
    ("api_url", "web"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com"),
        ("https://api.acme.ghe.com", "https://acme.ghe.com"),
        ("http://127.0.0.1:9999", "http://127.0.0.1:9999"),
    ],
)
def test_github_web_url_follows_the_api_url(api_url: str, web: str) -> None:
    assert github_web_url(api_url) == web
    assert new_app_url(api_url) == f"{web}/settings/apps/new"
    assert new_app_url(api_url, "octo-org") == f"{web}/organizations/octo-org/settings/apps/new"


# -- the form ---------------------------------------------------------------------------------


def test_the_setup_page_needs_the_token_from_the_log(site: Site) -> None:
    assert site.client.get("/setup").status_code == 403
    assert site.client.get("/setup", params={"token": "guess"}).status_code == 403
    page = site.client.get("/setup", params={"token": TOKEN})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    form = Forms.only(page.text)
    assert form["inputs"] == {
        "token": TOKEN,
        "name": "reviewbot",
        "organization": "",
        "public_url": site.url,
    }
    assert str(site.settings.data_dir.resolve()) in page.text


def test_the_public_url_is_prefilled_as_a_proxy_in_front_saw_the_request(
    site: Site, settings: Settings, serve_app: ServeApp
) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "reviewbot.example.com, inner.local"}
    page = site.client.get("/setup", params={"token": TOKEN}, headers=headers)
    assert Forms.only(page.text)["inputs"]["public_url"] == "https://reviewbot.example.com"
    bad = {"X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "evil.example.com/<x>"}
    page = site.client.get("/setup", params={"token": TOKEN}, headers=bad)
    assert Forms.only(page.text)["inputs"]["public_url"] == site.url

    with Site(settings.model_copy(update={"public_url": "https://bot.example.org"}), serve_app) as configured:
        page = configured.client.get("/setup", params={"token": TOKEN}, headers=headers)
    assert Forms.only(page.text)["inputs"]["public_url"] == "https://bot.example.org"


def test_posting_the_form_sends_the_manifest_and_a_fresh_state_to_github(site: Site, fake_github: FakeGitHub) -> None:
    state, manifest = site.start("https://bot.example.com/", name="acme-reviewbot")
    assert manifest == {
        "name": "acme-reviewbot",
        "url": "https://bot.example.com",
        "description": app_setup.DESCRIPTION,
        "hook_attributes": {"url": "https://bot.example.com/webhook", "active": True},
        "redirect_url": "https://bot.example.com/setup/callback",
        "public": False,
        "default_permissions": {"pull_requests": "write", "contents": "read", "metadata": "read"},
        "default_events": ["pull_request", "issue_comment"],
    }
    response = site.client.post(
        "/setup",
        data={"token": TOKEN, "name": "r", "organization": "octo-org", "public_url": "https://h.example/rb"},
    )
    form = Forms.only(response.text)
    action = urlsplit(form["action"])
    assert f"{action.scheme}://{action.netloc}{action.path}" == (
        f"{fake_github.api_url}/organizations/octo-org/settings/apps/new"
    )
    (other_state,) = parse_qs(action.query)["state"]
    assert other_state != state
    assert len(state) >= 32
    assert json.loads(form["inputs"]["manifest"])["hook_attributes"]["url"] == "https://h.example/rb/webhook"
    assert "nonce-" in response.headers["content-security-policy"]
    assert fake_github.requests == []  # nothing reaches GitHub's API before the callback


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "x" * 35),
        ("organization", "not an org"),
        ("public_url", "ftp://bot.example.com"),
        ("public_url", "https://bot.example.com/?q=1"),
        ("public_url", "bot.example.com"),
    ],
)
def test_bad_form_values_are_shown_again_without_a_state(site: Site, field: str, value: str) -> None:
    data = {"token": TOKEN, "name": "reviewbot", "organization": "", "public_url": "https://b.example", field: value}
    response = site.client.post("/setup", data=data)
    assert response.status_code == 400
    assert 'class="problem"' in response.text
    assert "manifest" not in Forms.only(response.text)["inputs"]


def test_posting_without_the_token_or_as_json_is_refused(site: Site) -> None:
    data = {"name": "reviewbot", "organization": "", "public_url": "https://b.example"}
    assert site.client.post("/setup", data=data).status_code == 403
    assert site.client.post("/setup", data={**data, "token": "guess"}).status_code == 403
    assert site.client.post("/setup", json={**data, "token": TOKEN}).status_code == 400


def test_setup_mode_refuses_webhooks_and_says_so_on_healthz(site: Site) -> None:
    assert site.client.post("/webhook", content=b"{}").status_code == 503
    assert site.client.get("/healthz").json() == {"status": "setup"}


# -- the callback -----------------------------------------------------------------------------


def test_a_callback_with_an_unknown_state_saves_nothing_and_asks_github_nothing(
    site: Site, fake_github: FakeGitHub
) -> None:
    state, manifest = site.start()
    code = fake_github.register_app(manifest)
    for bad in ("", "forged", state + "x", state[:-1]):
        assert site.callback(code, bad).status_code == 400
    assert saved_files(site.settings) == []
    assert fake_github.requests_to("POST", "/app-manifests/*") == []
    assert site.registered == []


def test_a_callback_after_the_hour_github_allows_saves_nothing(site: Site, fake_github: FakeGitHub) -> None:
    state, manifest = site.start()
    code = fake_github.register_app(manifest)
    site.clock.now += app_setup.STATE_LIFETIME + 1
    response = site.callback(code, state)
    assert response.status_code == 400
    assert "expired" in response.text
    assert saved_files(site.settings) == []
    assert fake_github.requests_to("POST", "/app-manifests/*") == []


def test_a_state_works_once_even_when_github_refused_the_code(site: Site, fake_github: FakeGitHub) -> None:
    state, manifest = site.start()
    refused = site.callback("0" * 40, state)  # a code GitHub never issued
    assert refused.status_code == 502
    assert "GitHub answered 404 to POST /app-manifests/{code}/conversions" in refused.text
    code = fake_github.register_app(manifest)
    assert site.callback(code, state).status_code == 400  # the state is spent
    assert saved_files(site.settings) == []
    assert site.registered == []
    assert len(fake_github.requests_to("POST", "/app-manifests/*")) == 1


def test_a_good_callback_exchanges_the_code_and_saves_the_app_for_its_owner_alone(
    site: Site, fake_github: FakeGitHub
) -> None:
    state, manifest = site.start()
    code = fake_github.register_app(manifest)
    response = site.callback(code, state)
    assert response.status_code == 200, response.text

    html_url = f"{WEB}/apps/{APP_SLUG}"
    assert f'href="{html_url}"' in response.text
    assert f'href="{html_url}/installations/new"' in response.text
    assert str(site.settings.data_dir.resolve()) in response.text
    assert fake_github.webhook_secret not in response.text
    assert "PRIVATE KEY" not in response.text

    (exchange,) = fake_github.requests_to("POST", f"/app-manifests/{code}/conversions")
    assert "authorization" not in exchange.headers
    assert saved_files(site.settings) == [APP_FILE, KEY_FILE]
    for name in (APP_FILE, KEY_FILE):
        assert stat.S_IMODE((site.settings.data_dir / name).stat().st_mode) == 0o600
    assert (site.settings.data_dir / KEY_FILE).read_text() == fake_github.private_key_pem.strip() + "\n"
    record = json.loads((site.settings.data_dir / APP_FILE).read_text())
    assert record["app_id"] == APP_ID
    assert record["slug"] == APP_SLUG
    assert record["webhook_secret"] == fake_github.webhook_secret
    assert record["github_api_url"] == fake_github.api_url
    assert "client_secret" not in record

    # on_registered runs once the success page has gone out, which may be just after we read it.
    deadline = time.monotonic() + 10
    while not site.registered and time.monotonic() < deadline:
        time.sleep(0.01)
    (registered,) = site.registered
    assert registered.github_app_id == str(APP_ID)
    assert registered.github_private_key_path == site.settings.data_dir / KEY_FILE
    assert registered.webhook_secret is not None
    assert registered.webhook_secret.get_secret_value() == fake_github.webhook_secret
    check_service_settings(registered)
    assert site.client.get("/healthz").json() == {"status": "ok"}


def test_the_setup_pages_answer_403_once_the_app_is_registered(
    site: Site, fake_github: FakeGitHub, serve_app: ServeApp
) -> None:
    state, manifest = site.start()
    site.callback(fake_github.register_app(manifest), state)
    before = (site.settings.data_dir / APP_FILE).read_bytes()

    assert site.client.get("/setup", params={"token": TOKEN}).status_code == 403
    data = {"token": TOKEN, "name": "x", "organization": "", "public_url": "https://b.example"}
    assert site.client.post("/setup", data=data).status_code == 403
    assert site.callback("abc", "def").status_code == 403
    # Another process that shares the directory sees it too.
    with Site(site.settings, serve_app) as other:
        assert other.client.get("/setup", params={"token": TOKEN}).status_code == 403
    assert (site.settings.data_dir / APP_FILE).read_bytes() == before


def test_the_normal_app_answers_403_on_the_setup_routes(tmp_path: Path, serve_app: ServeApp) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'reviewbot.db'}")
    try:
        app = create_app(Settings(webhook_secret="s"), store)
        with serve_app(app) as url, httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/setup", params={"token": TOKEN}).status_code == 403
            assert client.post("/setup", data={"token": TOKEN}).status_code == 403
            assert client.get("/setup/callback", params={"code": "c", "state": "s"}).status_code == 403
    finally:
        store.close()


def test_states_are_kept_in_a_bounded_book() -> None:
    clock = Clock()
    book = StateBook(10.0, limit=2, clock=clock)
    first, second, third = book.issue(), book.issue(), book.issue()
    assert not book.redeem(first)  # the oldest was forgotten
    clock.now += 5
    assert book.redeem(second)
    assert not book.redeem(second)
    clock.now += 6
    assert not book.redeem(third)


def test_the_exchange_is_unauthenticated_and_keeps_secrets_out_of_repr(fake_github: FakeGitHub) -> None:
    code = fake_github.register_app(
        {"name": "x", "url": "https://b.example", "hook_attributes": {"url": "https://b.example/webhook"}}
    )
    registration = asyncio.run(convert_app_manifest(fake_github.enterprise_api_url, code))
    assert (registration.id, registration.slug, registration.name) == (APP_ID, APP_SLUG, "x")
    # GitHub's docs: the code is the only credential; no token or JWT goes with the exchange.
    [exchange] = fake_github.requests_to("POST", f"/app-manifests/{code}/conversions")
    assert "authorization" not in {name.lower() for name in exchange.headers}
    assert fake_github.webhook_secret not in repr(registration)
    assert "PRIVATE" not in repr(registration)
    with pytest.raises(GitHubNotFound):
        asyncio.run(convert_app_manifest(fake_github.api_url, code))  # a code works once


# -- loading the saved App --------------------------------------------------------------------


def registration(fake_github: FakeGitHub) -> AppRegistration:
    return AppRegistration(
        id=APP_ID,
        slug=APP_SLUG,
        name="reviewbot",
        html_url=f"{WEB}/apps/{APP_SLUG}",
        client_id="Iv1.x",
        pem=fake_github.private_key_pem,
        webhook_secret=fake_github.webhook_secret,
    )


def test_a_restarted_settings_load_uses_the_saved_app(
    clean_env: pytest.MonkeyPatch, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    data_dir = tmp_path / "state"
    clean_env.setenv("REVIEWBOT_DATA_DIR", str(data_dir))
    assert needs_setup(load_settings())
    save_app(data_dir, registration(fake_github), "https://ghe.example.com/api/v3")

    settings = load_settings()
    assert not needs_setup(settings)
    assert settings.github_app_id == str(APP_ID)
    assert settings.github_private_key_path == data_dir / KEY_FILE
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == fake_github.webhook_secret
    assert settings.github_app_slug == APP_SLUG
    assert settings.github_api_url == "https://ghe.example.com/api/v3"
    check_service_settings(settings, reviews=False)


def test_the_environment_wins_over_the_saved_app(
    clean_env: pytest.MonkeyPatch, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    clean_env.chdir(tmp_path)  # the default REVIEWBOT_DATA_DIR, ./reviewbot-data
    save_app(Path("reviewbot-data"), registration(fake_github), "https://api.github.com")
    clean_env.setenv("REVIEWBOT_WEBHOOK_SECRET", "from-the-environment")
    clean_env.setenv("REVIEWBOT_GITHUB_API_URL", "https://ghe.example.com/api/v3")
    settings = load_settings()
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == "from-the-environment"
    assert settings.github_api_url == "https://ghe.example.com/api/v3"
    assert settings.github_app_id == str(APP_ID)

    # Another App's ID: none of the saved App is used, so no key of one App pairs with another's ID.
    clean_env.setenv("REVIEWBOT_GITHUB_APP_ID", "999")
    settings = load_settings()
    assert settings.github_app_id == "999"
    assert settings.github_private_key_path is None
    assert settings.github_app_slug is None


def test_a_damaged_save_is_a_config_error_naming_the_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    data_dir.mkdir()
    clean_env.setenv("REVIEWBOT_DATA_DIR", str(data_dir))
    (data_dir / APP_FILE).write_text('{"app_id": "not a number"}')
    with pytest.raises(ConfigError, match=re.escape(str(data_dir / APP_FILE))):
        load_settings()
    (data_dir / APP_FILE).write_text(
        json.dumps(
            {
                "app_id": 1,
                "slug": "s",
                "name": "n",
                "html_url": "h",
                "client_id": "c",
                "github_api_url": "https://api.github.com",
                "webhook_secret": "w",
            }
        )
    )
    with pytest.raises(ConfigError, match=r"app\.pem is missing"):
        load_settings()


def test_an_unwritable_data_dir_stops_setup_before_github_is_involved(settings: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="REVIEWBOT_DATA_DIR"):
        app_setup.run_setup(
            settings.model_copy(update={"data_dir": blocker / "data"}), lambda app: pytest.fail("no server")
        )


# -- end to end -------------------------------------------------------------------------------


def _serve(env: dict[str, str], port: int, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "reviewbot", "serve", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def _answers(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.TransportError:
        return None


def _setup_link(log: Path) -> str | None:
    found = re.search(r"open (http://\S+/setup\?token=\S+)", log.read_text("utf-8", errors="replace"))
    return found.group(1) if found else None


def test_serve_without_an_app_registers_one_then_serves_it_and_after_a_restart(
    fake_github: FakeGitHub, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = tmp_path / "reviewbot.db"
    log = tmp_path / "serve.log"
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("REVIEWBOT_", "OPENAI_"))},
        "REVIEWBOT_GITHUB_API_URL": fake_github.api_url,
        "REVIEWBOT_DATA_DIR": str(tmp_path / "data"),
        "REVIEWBOT_API_KEY": "sk-e2e",
        "REVIEWBOT_BASE_URL": fake_openai.base_url,
        "REVIEWBOT_MAX_RETRIES": "0",
        "REVIEWBOT_DATABASE_URL": f"sqlite:///{database}",
        "REVIEWBOT_JOB_LEASE_SECONDS": "3",
    }
    process = _serve(env, port, tmp_path, log)
    service = Service(url, database, process, env, fake_github.webhook_secret.encode())
    try:
        wait_for(lambda: _answers(f"{url}/healthz") == 200 or process.poll() is not None, 20, "setup mode")
        assert process.poll() is None, log.read_text()
        wait_for(lambda: _setup_link(log), 10, "the setup link in the log")
        link = _setup_link(log)
        assert link is not None
        assert httpx.get(f"{url}/healthz").json() == {"status": "setup"}
        assert service.deliver("ping", {"zen": "hi"}, guid("early-ping")) == 503

        page = httpx.get(link, timeout=10)
        assert page.status_code == 200
        fields = Forms.only(page.text)["inputs"]
        assert fields["public_url"] == url
        posted = httpx.post(f"{url}/setup", data={**fields, "name": "reviewbot-e2e"}, timeout=10)
        assert posted.status_code == 200
        form = Forms.only(posted.text)
        manifest = json.loads(form["inputs"]["manifest"])
        assert manifest["hook_attributes"]["url"] == f"{url}/webhook"
        (state,) = parse_qs(urlsplit(form["action"]).query)["state"]

        # GitHub's own page is skipped: register the manifest and follow the redirect it would send.
        code = fake_github.register_app(manifest)
        done = httpx.get(f"{manifest['redirect_url']}?{urlencode({'code': code, 'state': state})}", timeout=10)
        assert done.status_code == 200, done.text
        assert f"{WEB}/apps/{APP_SLUG}/installations/new" in done.text

        # The same process now serves the App.
        wait_for(lambda: _answers(f"{url}/readyz") == 200 or process.poll() is not None, 20, "normal mode")
        assert process.poll() is None, log.read_text()
        assert httpx.get(f"{url}/setup", params={"token": "x"}).status_code == 403
        assert service.deliver("ping", {"zen": "hi", "hook_id": 1}, guid("ping")) == 200
    finally:
        stop(service)
    text = log.read_text("utf-8")
    assert fake_github.webhook_secret not in text
    assert "PRIVATE KEY" not in text

    # Restarted with the same environment (still no App settings): the saved App, at once.
    fake_github.add_pull(REPO, 3, LEEWAY, head_sha=HEAD, base_sha=BASE)
    fake_openai.set_default(answer_with(BUG))
    process = _serve(env, port, tmp_path, log)
    service = Service(url, database, process, env, fake_github.webhook_secret.encode())
    try:
        wait_for(lambda: _answers(f"{url}/healthz") == 200 or process.poll() is not None, 20, "the restart")
        assert process.poll() is None, log.read_text()
        assert httpx.get(f"{url}/setup", params={"token": "x"}).status_code == 403
        opened = payload("opened.payload.json", number=3)
        assert service.deliver("pull_request", opened, guid("after-setup")) == 202
        wait_for(lambda: fake_github.review_count(REPO, 3, HEAD) == 1, 30, "the review")
        assert fake_github.requests_to("GET", "/app") == []  # the slug came with the saved App
    finally:
        stop(service)
    assert fake_github.webhook_secret not in log.read_text("utf-8")
