"""The GitHub client, with the real githubkit talking to a fake GitHub over loopback."""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit.compat import type_validate_python
from githubkit_schemas.v2026_03_10 import models
from pydantic import SecretStr

import reviewbot.github.client
from builders import modified_file_diff
from fake_github import (
    LINE_NOT_IN_DIFF,
    ONE_PENDING,
    PATH_NOT_IN_DIFF,
    START_NOT_BEFORE_LINE,
    START_OTHER_HUNK,
    FakeGitHub,
    Fault,
)
from fixtures_path import FIXTURE_DIFFS
from reviewbot.engine.diff import Diff, FileStatus, Side, decode, parse_diff
from reviewbot.errors import (
    ConfigError,
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubTransient,
    GitHubUnprocessable,
)
from reviewbot.github.client import GitHubClient
from reviewbot.github.draft import ReviewComment
from reviewbot.github.pulls import NO_PATCH, DiffFetch, PullRequest
from reviewbot.github.retry import RetryPolicy
from reviewbot.settings import Settings

T = TypeVar("T")

REPO = "octo/app"
NUMBER = 7
HEAD = "1" * 40
BASE = "2" * 40
PERSONAL_TOKEN = "ghp_personal0123456789abcdefghijklmnopqrst"
FAST = RetryPolicy(time_scale=0.001)
# Installation tokens are cached per App, key and installation for the whole process, so a
# test that counts token requests takes an installation no other test has used.
_installations = itertools.count(5000)


def run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await make()

    return asyncio.run(main())


def app_settings(fake: FakeGitHub, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "github_app_id": str(fake.app_id),
        "github_private_key": SecretStr(fake.private_key_pem),
        "github_api_url": fake.api_url,
    }
    values.update(overrides)
    return Settings(**values)


def app_client(fake: FakeGitHub, *, installation: int | None = None, **overrides: Any) -> GitHubClient:
    installation = next(_installations) if installation is None else installation
    return GitHubClient.for_installation(app_settings(fake, **overrides), installation, retry=FAST, timeout=5.0)


def token_client(fake: FakeGitHub, token: str = PERSONAL_TOKEN) -> GitHubClient:
    return GitHubClient.with_token(token, fake.api_url, retry=FAST, timeout=5.0)


def with_app(fake: FakeGitHub, use: Callable[[GitHubClient], Awaitable[T]], **options: Any) -> T:
    async def main() -> T:
        async with app_client(fake, **options) as github:
            return await use(github)

    return asyncio.run(main())


def add_small_pull(fake: FakeGitHub, *, body: str | None = "Closes #3", **options: Any) -> str:
    diff = modified_file_diff("app/service.py")
    fake.add_pull(REPO, NUMBER, diff, title="Fix the handler", body=body, head_sha=HEAD, base_sha=BASE, **options)
    return diff


def fixture(name: str) -> bytes:
    return (FIXTURE_DIFFS / f"{name}.diff").read_bytes()


def shape(diff: Diff, *, leave_out: frozenset[str] = frozenset()) -> list[tuple[Any, ...]]:
    """What a review depends on: each file's names, status, hunks and numbered lines."""
    return [
        (file.old_path, file.new_path, _comparable(file.status), file.hunks)
        for file in diff.files
        if file.path not in leave_out
    ]


def _comparable(status: FileStatus) -> FileStatus:
    # The files API knows no submodules: git's "Subproject commit" hunks come back as a modified file.
    return FileStatus.MODIFIED if status is FileStatus.SUBMODULE else status


def other_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def many_files_diff(modified: int) -> str:
    """A git diff of ``modified`` small modified files plus one of every awkward kind."""
    parts = []
    for i in range(modified):
        path = f"src/mod_{i:03}.py"
        parts.append(
            f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -1,3 +1,3 @@ def f():\n a = 1\n-b = 2\n+b = {i}\n c = 3\n"
        )
    parts += [
        "diff --git a/new/added.txt b/new/added.txt\nnew file mode 100644\nindex 0000000..3333333\n"
        "--- /dev/null\n+++ b/new/added.txt\n@@ -0,0 +1,2 @@\n+hello\n+world\n",
        "diff --git a/old/gone.txt b/old/gone.txt\ndeleted file mode 100644\nindex 3333333..0000000\n"
        "--- a/old/gone.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-hello\n-world\n",
        "diff --git a/old/name.py b/new/name.py\nsimilarity index 90%\nrename from old/name.py\n"
        "rename to new/name.py\nindex 4444444..5555555 100644\n--- a/old/name.py\n+++ b/new/name.py\n"
        "@@ -1,2 +1,2 @@\n-x = 1\n+x = 2\n y = 3\n",
        "diff --git a/docs/a.md b/docs/b.md\nsimilarity index 100%\nrename from docs/a.md\nrename to docs/b.md\n",
        "diff --git a/img/logo.png b/img/logo.png\nindex 6666666..7777777 100644\n"
        "Binary files a/img/logo.png and b/img/logo.png differ\n",
        'diff --git "a/docs/gu\\303\\255a.md" "b/docs/gu\\303\\255a.md"\nindex 8888888..9999999 100644\n'
        '--- "a/docs/gu\\303\\255a.md"\n+++ "b/docs/gu\\303\\255a.md"\n@@ -1 +1 @@\n-hola\n+adiós\n',
        "diff --git a/dir with space/file name.txt b/dir with space/file name.txt\nindex 1212121..3434343 100644\n"
        "--- a/dir with space/file name.txt\t\n+++ b/dir with space/file name.txt\t\n@@ -1 +1 @@\n-a\n+b\n",
        'diff --git "a/quote\\"d.txt" "b/quote\\"d.txt"\nindex 5656565..7878787 100644\n'
        '--- "a/quote\\"d.txt"\n+++ "b/quote\\"d.txt"\n@@ -1,2 +1,2 @@\n same\n-old\n+new\n',
    ]
    return "".join(parts)


# -- authentication ---------------------------------------------------------------------------


def test_an_app_client_trades_its_jwt_for_one_installation_token_and_reuses_it(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    add_small_pull(fake_github)
    key_file = tmp_path / "app.pem"
    key_file.write_text(fake_github.private_key_pem)
    installation = next(_installations)

    async def calls(github: GitHubClient) -> None:
        await github.get_pull(REPO, NUMBER)
        await github.list_reviews(REPO, NUMBER)
        await github.get_pull(REPO, NUMBER)

    with_app(fake_github, calls, installation=installation, github_private_key=None, github_private_key_path=key_file)
    with_app(fake_github, calls, installation=installation)  # a second client shares the token

    token_requests = fake_github.requests_to("POST", f"/app/installations/{installation}/access_tokens")
    assert len(token_requests) == 1
    scheme, _, credential = token_requests[0].headers["authorization"].partition(" ")
    claims = jwt.decode(credential, options={"verify_signature": False})
    assert scheme == "Bearer"
    assert claims["iss"] == str(fake_github.app_id)
    assert 0 < claims["exp"] - claims["iat"] <= 600
    repo_calls = fake_github.requests_to("GET", "/repos/*")
    assert len(repo_calls) == 6
    tokens = {r.headers["authorization"] for r in repo_calls}
    assert len(tokens) == 1
    assert tokens.pop().startswith("token ghs_")
    assert {r.headers["x-github-api-version"] for r in repo_calls} == {"2022-11-28"}


def test_a_key_that_is_not_the_apps_is_refused_with_an_auth_error(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    wrong = other_private_key()

    with pytest.raises(GitHubAuthError) as info:
        with_app(fake_github, lambda github: github.get_pull(REPO, NUMBER), github_private_key=SecretStr(wrong))

    assert info.value.status == 401
    assert "access_tokens" in str(info.value)
    assert "PRIVATE KEY" not in str(info.value)
    assert not fake_github.requests_to("GET", "/repos/*")


def test_a_missing_key_file_is_a_config_error_naming_the_variable(fake_github: FakeGitHub, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    settings = app_settings(fake_github, github_private_key=None, github_private_key_path=missing)

    with pytest.raises(ConfigError, match=r"REVIEWBOT_GITHUB_PRIVATE_KEY_PATH=.*nowhere\.pem does not exist; point it"):
        GitHubClient.for_installation(settings, 1)


def test_a_key_file_that_holds_no_pem_key_is_a_config_error(fake_github: FakeGitHub, tmp_path: Path) -> None:
    not_a_key = tmp_path / "app.pem"
    not_a_key.write_text("-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----\n")
    settings = app_settings(fake_github, github_private_key=None, github_private_key_path=not_a_key)

    with pytest.raises(ConfigError, match="is not a PEM RSA private key") as info:
        GitHubClient.for_installation(settings, 1)
    assert "c2VjcmV0" not in str(info.value)


def test_a_key_squeezed_onto_one_line_with_escaped_newlines_is_accepted(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    one_line = fake_github.private_key_pem.strip().replace("\n", "\\n")

    pr = with_app(fake_github, lambda github: github.get_pull(REPO, NUMBER), github_private_key=SecretStr(one_line))

    assert pr.number == NUMBER


def test_an_app_without_an_id_is_a_config_error(fake_github: FakeGitHub) -> None:
    with pytest.raises(ConfigError, match="REVIEWBOT_GITHUB_APP_ID"):
        GitHubClient.for_installation(app_settings(fake_github, github_app_id=None), 1)


def test_an_app_client_knows_its_slug_and_bot_login(fake_github: FakeGitHub) -> None:
    async def who(github: GitHubClient) -> tuple[str, str]:
        return await github.app_slug(), await github.viewer_login()

    reviewbot.github.client._APP_SLUGS.clear()  # other tests' clients already asked for this App's slug
    assert with_app(fake_github, who) == ("reviewbot-test", "reviewbot-test[bot]")
    app_request = fake_github.requests_to("GET", "/app")[0]
    assert app_request.headers["authorization"].startswith("Bearer ey")
    # Later clients of the same App in this process do not ask again.
    assert with_app(fake_github, who) == ("reviewbot-test", "reviewbot-test[bot]")
    assert len(fake_github.requests_to("GET", "/app")) == 1


def test_an_app_client_works_under_an_enterprise_server_api_prefix(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)

    async def use(github: GitHubClient) -> tuple[str, PullRequest]:
        return await github.app_slug(), await github.get_pull(REPO, NUMBER)

    slug, pr = with_app(fake_github, use, github_api_url=fake_github.enterprise_api_url)

    assert slug == "reviewbot-test"
    assert pr.head_sha == HEAD


def test_a_personal_token_client_reads_and_reviews_as_its_user(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    fake_github.add_personal_token(PERSONAL_TOKEN, "mona")

    async def use(github: GitHubClient) -> tuple[str, int]:
        login = await github.viewer_login()
        pr = await github.get_pull(REPO, NUMBER)
        review = await github.create_review(REPO, NUMBER, commit_id=pr.head_sha, body="Looks fine.", comments=[])
        return login, review

    async def main() -> tuple[str, int]:
        async with token_client(fake_github) as github:
            with pytest.raises(GitHubError, match="App client"):
                await github.app_slug()
            return await use(github)

    login, review_id = asyncio.run(main())

    assert login == "mona"
    assert [(r["id"], r["user"]["login"]) for r in fake_github.reviews(REPO, NUMBER)] == [(review_id, "mona")]
    assert {r.headers["authorization"] for r in fake_github.requests} == {f"token {PERSONAL_TOKEN}"}


def test_a_bad_personal_token_is_an_auth_error_that_does_not_repeat_the_token(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)

    async def main() -> PullRequest:
        async with token_client(fake_github, "ghp_wrong_wrong_wrong") as github:
            return await github.get_pull(REPO, NUMBER)

    with pytest.raises(GitHubAuthError, match="Bad credentials") as info:
        asyncio.run(main())
    assert "ghp_wrong" not in str(info.value)
    assert len(fake_github.requests) == 1


# -- pull requests and diffs ------------------------------------------------------------------


def test_get_pull_maps_githubs_pull_request(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github, draft=True, author="dependabot[bot]", body=None)

    pr = with_app(fake_github, lambda github: github.get_pull(REPO, NUMBER))

    assert pr == PullRequest(
        repo=REPO,
        number=NUMBER,
        title="Fix the handler",
        body="",
        state="open",
        draft=True,
        merged=False,
        head_sha=HEAD,
        head_ref="feature",
        base_sha=BASE,
        base_ref="main",
        author="dependabot[bot]",
        author_type="Bot",
        changed_files=1,
        additions=4,
        deletions=1,
        html_url="https://github.com/octo/app/pull/7",
    )


def test_a_missing_pull_request_is_not_found(fake_github: FakeGitHub) -> None:
    with pytest.raises(GitHubNotFound, match="404 to GET /repos/octo/app/pulls/99") as info:
        with_app(fake_github, lambda github: github.get_pull(REPO, 99))
    assert info.value.status == 404


def test_get_pull_diff_returns_githubs_diff_unchanged(fake_github: FakeGitHub) -> None:
    diff = fixture("ripgrep-6b61271bbbf6")  # CRLF line endings
    fake_github.add_pull(REPO, NUMBER, diff, head_sha=HEAD, base_sha=BASE)

    async def fetch(github: GitHubClient) -> DiffFetch:
        return await github.get_pull_diff(await github.get_pull(REPO, NUMBER))

    fetched = with_app(fake_github, fetch)

    assert fetched == DiffFetch(text=decode(diff), omitted=(), source="diff")
    assert parse_diff(fetched.text) == parse_diff(diff)
    assert (
        fake_github.requests_to("GET", "/repos/octo/app/pulls/7")[-1].headers["accept"] == "application/vnd.github.diff"
    )


def test_a_diff_github_refuses_as_too_large_is_rebuilt_from_the_files_api(fake_github: FakeGitHub) -> None:
    diff = many_files_diff(293)
    fake_github.add_pull(REPO, NUMBER, diff, head_sha=HEAD, base_sha=BASE)

    async def fetch(github: GitHubClient) -> DiffFetch:
        pr = await github.get_pull(REPO, NUMBER)
        assert pr.changed_files == 301
        # As if GitHub's count were stale, so the diff is asked for and refused.
        return await github.get_pull_diff(replace(pr, changed_files=3))

    fetched = with_app(fake_github, fetch)

    assert fetched.source == "files"
    assert fetched.omitted == (("img/logo.png", NO_PATCH),)
    assert shape(parse_diff(fetched.text)) == shape(parse_diff(diff), leave_out=frozenset({"img/logo.png"}))
    paths = {file.path for file in parse_diff(fetched.text).files}
    assert {"docs/guía.md", "dir with space/file name.txt", 'quote"d.txt', "docs/b.md"} <= paths
    diff_requests = fake_github.requests_to("GET", "/repos/octo/app/pulls/7")
    assert [r.headers["accept"] for r in diff_requests][-1] == "application/vnd.github.diff"
    pages = fake_github.requests_to("GET", "/repos/octo/app/pulls/7/files")
    assert [(r.query.get("per_page"), r.query.get("page")) for r in pages] == [
        ("100", None),
        ("100", "2"),
        ("100", "3"),
        ("100", "4"),
    ]


def test_a_pull_request_over_300_files_skips_the_diff_request(fake_github: FakeGitHub) -> None:
    fake_github.add_pull(REPO, NUMBER, many_files_diff(293), head_sha=HEAD, base_sha=BASE)

    async def fetch(github: GitHubClient) -> DiffFetch:
        return await github.get_pull_diff(await github.get_pull(REPO, NUMBER))

    fetched = with_app(fake_github, fetch)

    assert fetched.source == "files"
    assert len(fake_github.requests_to("GET", "/repos/octo/app/pulls/7")) == 1  # the JSON only


def test_a_pull_request_over_20000_changed_lines_skips_the_diff_request(fake_github: FakeGitHub) -> None:
    added = "".join(f"+line {i}\n" for i in range(20_001))
    header = "diff --git a/big.txt b/big.txt\nnew file mode 100644\n--- /dev/null\n+++ b/big.txt\n"
    diff = f"{header}@@ -0,0 +1,20001 @@\n{added}"
    fake_github.add_pull(REPO, NUMBER, diff, head_sha=HEAD, base_sha=BASE)

    async def fetch(github: GitHubClient) -> DiffFetch:
        return await github.get_pull_diff(await github.get_pull(REPO, NUMBER))

    fetched = with_app(fake_github, fetch)

    assert fetched.source == "files"
    assert parse_diff(fetched.text) == parse_diff(diff)


def test_a_diff_github_has_no_time_for_is_rebuilt_at_once_without_retrying(fake_github: FakeGitHub) -> None:
    diff = add_small_pull(fake_github)
    fake_github.push(Fault.error("GET", "/repos/octo/app/pulls/7", 500, accept="diff"))

    async def fetch(github: GitHubClient) -> DiffFetch:
        return await github.get_pull_diff(await github.get_pull(REPO, NUMBER))

    fetched = with_app(fake_github, fetch)

    assert fetched.source == "files"
    assert shape(parse_diff(fetched.text)) == shape(parse_diff(diff))
    assert len(fake_github.requests_to("GET", "/repos/octo/app/pulls/7")) == 2  # JSON, one diff attempt


@pytest.mark.parametrize(
    "name",
    [
        "flask-a9b99b3489cc",  # pure renames
        "bat-a86f3e5b81bb",  # a rename with changes
        "flask-04920b30765a",  # added, deleted, renamed
        "flask-83d777bebfb3",  # binary files
        "ripgrep-6b61271bbbf6",  # CRLF
        "flask-34380b9c1d24",  # no newline at end of file
        "bat-9c09799e1fc7",  # a mode change only
        "bat-816aea062536",  # a submodule
        "ripgrep-392bb0944a7a",
    ],
)
def test_a_diff_rebuilt_from_the_files_api_reads_like_githubs(fake_github: FakeGitHub, name: str) -> None:
    diff = fixture(name)
    fake_github.add_pull(REPO, NUMBER, diff, head_sha=HEAD, base_sha=BASE)

    async def fetch(github: GitHubClient) -> DiffFetch:
        pr = await github.get_pull(REPO, NUMBER)
        return await github.get_pull_diff(replace(pr, changed_files=301))

    fetched = with_app(fake_github, fetch)

    original = parse_diff(diff)
    without_patch = {
        f.path for f in original.files if not f.hunks and f.status not in (FileStatus.RENAMED, FileStatus.COPIED)
    }
    assert {path for path, _ in fetched.omitted} == without_patch
    assert shape(parse_diff(fetched.text)) == shape(original, leave_out=frozenset(without_patch))


def test_the_rebuilt_diff_writes_git_rename_lines(fake_github: FakeGitHub) -> None:
    fake_github.add_pull(REPO, NUMBER, fixture("bat-a86f3e5b81bb"), head_sha=HEAD, base_sha=BASE)

    async def fetch(github: GitHubClient) -> DiffFetch:
        return await github.get_pull_diff(replace(await github.get_pull(REPO, NUMBER), changed_files=301))

    text = with_app(fake_github, fetch).text

    assert (
        "diff --git a/assets/completions/bat.zsh b/assets/completions/bat.zsh.in\n"
        "rename from assets/completions/bat.zsh\n"
        "rename to assets/completions/bat.zsh.in\n"
        "--- a/assets/completions/bat.zsh\n"
        "+++ b/assets/completions/bat.zsh.in\n"
        "@@ "
    ) in text


def test_a_file_github_sent_no_patch_for_is_listed_as_omitted(fake_github: FakeGitHub) -> None:
    diff = fixture("ripgrep-392bb0944a7a")
    too_large = parse_diff(diff).files[0].path
    fake_github.add_pull(REPO, NUMBER, diff, head_sha=HEAD, base_sha=BASE, files_patch_overrides={too_large: None})

    async def fetch(github: GitHubClient) -> DiffFetch:
        return await github.get_pull_diff(replace(await github.get_pull(REPO, NUMBER), changed_files=301))

    fetched = with_app(fake_github, fetch)

    assert fetched.omitted == ((too_large, NO_PATCH),)
    assert too_large not in {file.path for file in parse_diff(fetched.text).files}


def test_compare_diff_returns_the_diff_or_none_for_an_unknown_commit(fake_github: FakeGitHub) -> None:
    changes = modified_file_diff("lib/x.py")
    fake_github.set_compare(REPO, BASE, HEAD, changes)

    async def compare(github: GitHubClient) -> tuple[str | None, str | None]:
        return await github.compare_diff(REPO, BASE, HEAD), await github.compare_diff(REPO, "f" * 40, HEAD)

    assert with_app(fake_github, compare) == (changes, None)
    assert fake_github.requests_to("GET", f"/repos/octo/app/compare/{BASE}...{HEAD}")[0].headers["accept"] == (
        "application/vnd.github.diff"
    )


def test_get_file_returns_the_bytes_or_none_for_a_missing_file_or_a_directory(fake_github: FakeGitHub) -> None:
    fake_github.set_file(REPO, "main", ".github/reviewbot.toml", 'model = "x"\n')
    fake_github.set_file(REPO, "main", "docs/odd name #1.bin", bytes(range(256)))

    async def read(github: GitHubClient) -> list[bytes | None]:
        return [
            await github.get_file(REPO, ".github/reviewbot.toml", "main"),
            await github.get_file(REPO, "docs/odd name #1.bin", "main"),
            await github.get_file(REPO, ".github/reviewbot.toml", "other-branch"),
            await github.get_file(REPO, ".github", "main"),
        ]

    assert with_app(fake_github, read) == [b'model = "x"\n', bytes(range(256)), None, None]


def test_a_file_over_a_megabyte_comes_raw_and_one_over_max_bytes_is_never_fetched(fake_github: FakeGitHub) -> None:
    big = b"x = 1\n" * 400_000  # 2.4 MB: the contents API sends it without content
    fake_github.set_file(REPO, "main", "big.py", big)

    async def read(github: GitHubClient) -> list[bytes | None]:
        return [
            await github.get_file(REPO, "big.py", "main"),
            await github.get_file(REPO, "big.py", "main", max_bytes=2_000_000),
        ]

    assert with_app(fake_github, read) == [big, None]
    raw = [r for r in fake_github.requests_to("GET", f"/repos/{REPO}/contents/big.py") if "raw" in r.headers["accept"]]
    assert len(raw) == 1  # only for the read without a limit


# -- reviews ----------------------------------------------------------------------------------

RIGHT_ONE = ReviewComment(path="app/service.py", body="Injection.", line=14, side=Side.RIGHT)
RIGHT_RANGE = ReviewComment(
    path="app/service.py", body="Both lines.", line=13, side=Side.RIGHT, start_line=12, start_side=Side.RIGHT
)
LEFT_ONE = ReviewComment(path="app/service.py", body="Was this needed?", line=39, side=Side.LEFT)


def test_a_review_with_single_and_multi_line_comments_is_posted_and_listed(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)

    async def post(github: GitHubClient) -> tuple[int, Any, Any]:
        review_id = await github.create_review(
            REPO, NUMBER, commit_id=HEAD, body="Two findings.", comments=[RIGHT_ONE, RIGHT_RANGE, LEFT_ONE]
        )
        return review_id, await github.list_reviews(REPO, NUMBER), await github.list_review_comments(REPO, NUMBER)

    review_id, reviews, comments = with_app(fake_github, post)

    assert [(r.id, r.user_login, r.state, r.commit_id, r.body) for r in reviews] == [
        (review_id, "reviewbot-test[bot]", "COMMENTED", HEAD, "Two findings.")
    ]
    assert [(c.path, c.line, c.side, c.body, c.commit_id, c.user_login) for c in comments] == [
        ("app/service.py", 14, Side.RIGHT, "Injection.", HEAD, "reviewbot-test[bot]"),
        ("app/service.py", 13, Side.RIGHT, "Both lines.", HEAD, "reviewbot-test[bot]"),
        ("app/service.py", 39, Side.LEFT, "Was this needed?", HEAD, "reviewbot-test[bot]"),
    ]
    sent = fake_github.requests_to("POST", "/repos/octo/app/pulls/7/reviews")[0].json
    assert sent["event"] == "COMMENT"
    assert sent["commit_id"] == HEAD
    assert sent["comments"][0] == {"path": "app/service.py", "body": "Injection.", "line": 14, "side": "RIGHT"}
    assert sent["comments"][1]["start_line"] == 12
    assert sent["comments"][1]["start_side"] == "RIGHT"
    assert fake_github.review_count(REPO, NUMBER, HEAD) == 1


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        (ReviewComment(path="app/service.py", body="x", line=30, side=Side.RIGHT), LINE_NOT_IN_DIFF),
        (ReviewComment(path="app/service.py", body="x", line=20, side=Side.LEFT), LINE_NOT_IN_DIFF),
        (ReviewComment(path="app/other.py", body="x", line=12, side=Side.RIGHT), PATH_NOT_IN_DIFF),
        (replace(RIGHT_RANGE, start_line=14), START_NOT_BEFORE_LINE),
        (replace(RIGHT_RANGE, start_line=12, line=41), START_OTHER_HUNK),
    ],
)
def test_one_comment_github_cannot_place_fails_the_whole_review(
    fake_github: FakeGitHub, comment: ReviewComment, message: str
) -> None:
    add_small_pull(fake_github)

    async def post(github: GitHubClient) -> int:
        return await github.create_review(REPO, NUMBER, commit_id=HEAD, body="b", comments=[RIGHT_ONE, comment])

    with pytest.raises(GitHubUnprocessable) as info:
        with_app(fake_github, post)

    assert info.value.status == 422
    assert info.value.github_message == "Unprocessable Entity"
    assert info.value.errors == (message,)
    assert fake_github.reviews(REPO, NUMBER) == []
    assert len(fake_github.requests_to("POST", "*/reviews")) == 1


def test_a_review_on_a_commit_that_is_no_head_of_the_pull_request_is_refused(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)

    with pytest.raises(GitHubUnprocessable, match="commit_id is not part of the pull request"):
        with_app(
            fake_github, lambda github: github.create_review(REPO, NUMBER, commit_id="9" * 40, body="b", comments=[])
        )


def test_a_pending_review_blocks_a_new_one_until_it_is_deleted(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    pending = fake_github.add_review(REPO, NUMBER, user=fake_github.bot_login, state="PENDING")
    fake_github.add_review(REPO, NUMBER, user="mona", state="PENDING")  # someone else's: invisible to us

    async def go(github: GitHubClient) -> tuple[list[tuple[int, str]], int, list[tuple[int, str]]]:
        with pytest.raises(GitHubUnprocessable) as info:
            await github.create_review(REPO, NUMBER, commit_id=HEAD, body="b", comments=[RIGHT_ONE])
        assert info.value.errors == (ONE_PENDING,)
        before = [(r.id, r.state) for r in await github.list_reviews(REPO, NUMBER)]
        await github.delete_pending_review(REPO, NUMBER, pending)
        review_id = await github.create_review(REPO, NUMBER, commit_id=HEAD, body="b", comments=[RIGHT_ONE])
        after = [(r.id, r.state) for r in await github.list_reviews(REPO, NUMBER)]
        return before, review_id, after

    before, review_id, after = with_app(fake_github, go)

    assert before == [(pending, "PENDING")]
    assert after == [(review_id, "COMMENTED")]


def test_deleting_a_submitted_review_is_refused(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    submitted = fake_github.add_review(REPO, NUMBER, user=fake_github.bot_login)

    with pytest.raises(GitHubUnprocessable):
        with_app(fake_github, lambda github: github.delete_pending_review(REPO, NUMBER, submitted))
    assert len(fake_github.reviews(REPO, NUMBER)) == 1


def test_reviews_and_comments_are_read_across_pages(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    for _ in range(130):
        fake_github.add_review(REPO, NUMBER, user="mona")

    reviews = with_app(fake_github, lambda github: github.list_reviews(REPO, NUMBER))

    assert len(reviews) == 130
    assert len(fake_github.requests_to("GET", "/repos/octo/app/pulls/7/reviews")) == 2


# -- failures and retries ---------------------------------------------------------------------


def test_a_secondary_rate_limit_on_a_get_is_waited_out_and_retried(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    fake_github.push(Fault.secondary_rate_limit("GET", "/repos/octo/app/pulls/7", retry_after=1))
    settings = app_settings(fake_github)

    async def main() -> tuple[PullRequest, float]:
        # The real policy, so the one-second retry-after is really waited for.
        async with GitHubClient.for_installation(settings, next(_installations)) as github:
            started = time.monotonic()
            pr = await github.get_pull(REPO, NUMBER)
            return pr, time.monotonic() - started

    pr, elapsed = asyncio.run(main())

    assert pr.number == NUMBER
    assert elapsed >= 0.9
    assert len(fake_github.requests_to("GET", "/repos/octo/app/pulls/7")) == 2


def test_a_primary_rate_limit_longer_than_the_longest_wait_is_raised_with_its_reset(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    fake_github.push(Fault.primary_rate_limit("GET", "/repos/octo/app/pulls/7", reset_in=600))

    with pytest.raises(GitHubRateLimited) as info:
        with_app(fake_github, lambda github: github.get_pull(REPO, NUMBER))

    assert 590 <= info.value.retry_after <= 601
    assert info.value.status == 403
    assert len(fake_github.requests_to("GET", "/repos/octo/app/pulls/7")) == 1


def test_a_primary_rate_limit_that_resets_soon_is_waited_out(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    fake_github.push(Fault.primary_rate_limit("GET", "/repos/octo/app/pulls/7", reset_in=2, status=429))

    pr = with_app(fake_github, lambda github: github.get_pull(REPO, NUMBER))

    assert pr.number == NUMBER
    assert len(fake_github.requests_to("GET", "/repos/octo/app/pulls/7")) == 2


def test_a_secondary_rate_limit_without_a_wait_is_known_by_its_message(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    fake_github.push(Fault.secondary_rate_limit("GET", "/repos/octo/app/pulls/7", retry_after=None))
    settings = app_settings(fake_github)

    async def main() -> PullRequest:
        policy = RetryPolicy(max_wait=10, time_scale=0.001)
        async with GitHubClient.for_installation(settings, next(_installations), retry=policy) as github:
            return await github.get_pull(REPO, NUMBER)

    with pytest.raises(GitHubRateLimited, match="secondary rate limit") as info:
        asyncio.run(main())
    assert info.value.retry_after == 60


def test_server_errors_on_a_get_are_retried_with_backoff(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    fake_github.push(
        Fault.error("GET", "/repos/octo/app/pulls/7", 502), Fault.error("GET", "/repos/octo/app/pulls/7", 503)
    )

    pr = with_app(fake_github, lambda github: github.get_pull(REPO, NUMBER))

    assert pr.number == NUMBER
    assert len(fake_github.requests_to("GET", "/repos/octo/app/pulls/7")) == 3


def test_server_errors_that_last_become_a_transient_error(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    fake_github.push(*[Fault.error("GET", "/repos/octo/app/pulls/7", 500) for _ in range(4)])

    with pytest.raises(GitHubTransient) as info:
        with_app(fake_github, lambda github: github.get_pull(REPO, NUMBER))

    assert info.value.status == 500
    assert len(fake_github.requests_to("GET", "/repos/octo/app/pulls/7")) == 4  # 1 + 3 retries


def test_a_get_that_times_out_is_retried(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    fake_github.push(Fault.slow("GET", "/repos/octo/app/pulls/7", 2.0))
    settings = app_settings(fake_github)

    async def main() -> PullRequest:
        async with GitHubClient.for_installation(settings, next(_installations), retry=FAST, timeout=0.3) as github:
            return await github.get_pull(REPO, NUMBER)

    assert asyncio.run(main()).number == NUMBER
    assert len(fake_github.requests_to("GET", "/repos/octo/app/pulls/7")) == 2


def test_a_post_is_never_retried_after_a_server_error_or_a_rate_limit(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    fake_github.push(
        Fault.error("POST", "/repos/octo/app/pulls/7/reviews", 502),
        Fault.secondary_rate_limit("POST", "/repos/octo/app/pulls/7/reviews", retry_after=1),
    )

    async def post(github: GitHubClient) -> list[type[Exception]]:
        raised: list[type[Exception]] = []
        for _ in range(2):
            try:
                await github.create_review(REPO, NUMBER, commit_id=HEAD, body="b", comments=[RIGHT_ONE])
            except GitHubError as exc:
                raised.append(type(exc))
        return raised

    assert with_app(fake_github, post) == [GitHubTransient, GitHubRateLimited]
    assert len(fake_github.requests_to("POST", "/repos/octo/app/pulls/7/reviews")) == 2
    assert fake_github.reviews(REPO, NUMBER) == []


def test_a_review_stored_before_a_502_is_reported_transient_but_is_there(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    fake_github.push(Fault.succeed_then("POST", "/repos/octo/app/pulls/7/reviews", 502))

    async def post(github: GitHubClient) -> list[str | None]:
        with pytest.raises(GitHubTransient):
            await github.create_review(REPO, NUMBER, commit_id=HEAD, body="b", comments=[RIGHT_ONE])
        return [review.commit_id for review in await github.list_reviews(REPO, NUMBER)]

    assert with_app(fake_github, post) == [HEAD]
    assert fake_github.review_count(REPO, NUMBER, HEAD) == 1
    assert len(fake_github.requests_to("POST", "*/reviews")) == 1


def test_an_unreachable_github_is_a_transient_error(fake_github: FakeGitHub) -> None:
    with pytest.raises(GitHubTransient, match="could not reach GitHub"):
        with_app(fake_github, lambda github: github.get_pull(REPO, NUMBER), github_api_url="http://127.0.0.1:9")


# -- the fake itself --------------------------------------------------------------------------


def test_the_fakes_json_is_what_githubkits_models_accept(fake_github: FakeGitHub) -> None:
    add_small_pull(fake_github)
    fake_github.set_file(REPO, "main", "README.md", "hi\n")
    fake_github.add_personal_token(PERSONAL_TOKEN)
    with_app(
        fake_github, lambda github: github.create_review(REPO, NUMBER, commit_id=HEAD, body="b", comments=[RIGHT_ONE])
    )
    headers = {"authorization": f"token {PERSONAL_TOKEN}"}
    checks: list[tuple[str, Any]] = [
        ("/repos/octo/app/pulls/7", models.PullRequest),
        ("/repos/octo/app/pulls/7/files", list[models.DiffEntry]),
        ("/repos/octo/app/pulls/7/reviews", list[models.PullRequestReview]),
        ("/repos/octo/app/pulls/7/comments", list[models.PullRequestReviewComment]),
        ("/repos/octo/app/contents/README.md", models.ContentFile),
        ("/user", models.PrivateUser),
    ]
    with httpx.Client(base_url=fake_github.api_url, headers=headers) as http:
        for path, model in checks:
            response = http.get(path)
            assert response.status_code == 200, path
            type_validate_python(model, response.json())


def test_github_and_model_clients_verify_tls_with_contexts_made_once_per_process() -> None:
    from reviewbot.engine.llm import ModelClient

    github = [GitHubClient.with_token("t", "https://api.github.com")._github.config.ssl_verify for _ in range(2)]
    models = [
        ModelClient.from_settings(Settings(api_key="k", _env_file=None))._client._client._transport._pool._ssl_context  # type: ignore[attr-defined]
        for _ in range(2)
    ]
    for first, second in (github, models):
        assert isinstance(first, ssl.SSLContext)
        assert first is second  # the CAs are loaded once per process, not once per review
        assert first.verify_mode == ssl.CERT_REQUIRED
        assert first.check_hostname


@pytest.mark.parametrize("repo", ["../x", "octo/..", "octo/x/y", "octo/x?y=1", "octo%2F..", "/x", "octo/"])
def test_a_repository_name_that_could_change_the_api_path_never_reaches_github(
    fake_github: FakeGitHub, repo: str
) -> None:
    async def go() -> None:
        async with GitHubClient.with_token("ghp_test", fake_github.api_url) as github:
            await github.get_pull(repo, 1)

    with pytest.raises(ConfigError, match="is not a repository name of the form owner/name"):
        asyncio.run(go())
    assert fake_github.requests == []
