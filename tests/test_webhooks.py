"""Signature checks and event routing, with real GitHub payloads from tests/data."""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures_path import WEBHOOKS
from reviewbot.service.webhooks import (
    Ignored,
    PayloadError,
    Router,
    SignatureCheck,
    WebhookOptions,
    delivery_facts,
    is_review_command,
    router,
    sign,
)
from reviewbot.store.records import Delivery, InstallationChange, JobRequest
from reviewbot.store.store import open_store
from stored import installation_repos

# GitHub's documented test vector ("Validating webhook deliveries").
DOCS_SECRET = b"It's a Secret to Everybody"
DOCS_PAYLOAD = b"Hello, World!"
DOCS_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
BASE = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
OPTIONS = WebhookOptions(app_slug="review-bot")


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((WEBHOOKS / name).read_text(encoding="utf-8"))
    return data


def pull_request(action: str = "opened", **changes: Any) -> dict[str, Any]:
    """The real ``pull_request`` payload with ``action`` and ``pull_request`` fields replaced."""
    name = "synchronize" if action == "synchronize" else "opened"
    payload = load(f"pull_request/{name}.payload.json")
    payload["action"] = action
    payload["pull_request"].update(changes)
    return payload


def comment(body: str, *, on_pull_request: bool = True, association: str = "OWNER") -> dict[str, Any]:
    payload = load("issue_comment/created.with-installation.payload.json")
    if on_pull_request:
        payload["issue"]["pull_request"] = {"url": payload["issue"]["url"].replace("/issues/", "/pulls/")}
    payload["comment"]["body"] = body
    payload["comment"]["author_association"] = association
    return payload


def as_bot(payload: dict[str, Any]) -> dict[str, Any]:
    payload = copy.deepcopy(payload)
    payload["sender"]["type"] = "Bot"
    return payload


# -- signatures ------------------------------------------------------------------------------


def verify_signature(secret: bytes, body: bytes, header: str | None, piece: int = 7) -> bool:
    """The product's check as the webhook runs it: the body fed in pieces as it streams in."""
    check = SignatureCheck.from_header(secret, header)
    if check is None:
        return False
    for start in range(0, len(body), piece):
        check.update(body[start : start + piece])
    return check.matches()


def test_githubs_documented_test_vector_verifies() -> None:
    assert verify_signature(DOCS_SECRET, DOCS_PAYLOAD, DOCS_SIGNATURE)
    assert sign(DOCS_SECRET, DOCS_PAYLOAD) == DOCS_SIGNATURE


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=" + "0" * 64,
        DOCS_SIGNATURE.removeprefix("sha256="),
        "sha1=" + "0" * 40,
        DOCS_SIGNATURE.upper(),
        DOCS_SIGNATURE + "00",
        "sha256=ünïcode",
    ],
)
def test_a_missing_wrong_or_sha1_signature_is_invalid(header: str | None) -> None:
    assert not verify_signature(DOCS_SECRET, DOCS_PAYLOAD, header)


def test_a_signature_of_another_body_or_under_another_secret_is_invalid() -> None:
    assert not verify_signature(DOCS_SECRET, DOCS_PAYLOAD + b" ", DOCS_SIGNATURE)
    assert not verify_signature(b"another secret", DOCS_PAYLOAD, DOCS_SIGNATURE)
    assert not verify_signature(b"", DOCS_PAYLOAD, sign(b"", DOCS_PAYLOAD))


def test_the_real_payload_fixtures_are_present() -> None:
    names = sorted(str(path.relative_to(WEBHOOKS)) for path in Path(WEBHOOKS).rglob("*.json"))
    assert "pull_request/opened.payload.json" in names
    assert "MIT" in (WEBHOOKS / "README.md").read_text(encoding="utf-8")


# -- pull_request ----------------------------------------------------------------------------


def test_an_opened_pull_request_queues_a_full_review_of_its_head() -> None:
    outcome = router.dispatch("pull_request", pull_request("opened"), OPTIONS)
    assert outcome == JobRequest(
        installation_id=1,
        repo="Codertocat/Hello-World",
        pr_number=2,
        head_sha=HEAD,
        base_sha=BASE,
        full_review=True,
        trigger="pull_request.opened",
    )


@pytest.mark.parametrize("action", ["reopened", "ready_for_review"])
def test_reopened_and_ready_for_review_queue_full_reviews(action: str) -> None:
    outcome = router.dispatch("pull_request", pull_request(action), OPTIONS)
    assert isinstance(outcome, JobRequest)
    assert outcome.full_review
    assert outcome.trigger == f"pull_request.{action}"


def test_a_push_to_the_pull_request_queues_an_incremental_review() -> None:
    outcome = router.dispatch("pull_request", load("pull_request/synchronize.payload.json"), OPTIONS)
    assert isinstance(outcome, JobRequest)
    assert (outcome.full_review, outcome.trigger, outcome.head_sha) == (False, "pull_request.synchronize", HEAD)


def test_a_draft_is_queued_for_the_worker_to_decide_by_the_repository_config() -> None:
    draft = pull_request("opened", draft=True)
    assert isinstance(router.dispatch("pull_request", draft, OPTIONS), JobRequest)


def test_a_closed_pull_request_is_ignored() -> None:
    outcome = router.dispatch("pull_request", pull_request("synchronize", state="closed"), OPTIONS)
    assert outcome == Ignored("the pull request is closed")


def test_a_push_by_a_bot_is_ignored() -> None:
    outcome = router.dispatch("pull_request", as_bot(pull_request("synchronize")), OPTIONS)
    assert outcome == Ignored("the sender is a bot")


def test_an_edit_of_title_or_body_is_ignored() -> None:
    payload = pull_request("edited")
    payload["changes"] = {"title": {"from": "Old title"}}
    outcome = router.dispatch("pull_request", payload, OPTIONS)
    assert isinstance(outcome, Ignored)
    assert "base" in outcome.reason


def test_a_change_of_base_branch_queues_a_full_review() -> None:
    payload = pull_request("edited")
    payload["changes"] = {"base": {"ref": {"from": "develop"}, "sha": {"from": "1" * 40}}}
    outcome = router.dispatch("pull_request", payload, OPTIONS)
    assert isinstance(outcome, JobRequest)
    assert (outcome.full_review, outcome.trigger) == (True, "pull_request.edited")


def test_a_pull_request_delivery_without_an_installation_is_ignored() -> None:
    payload = pull_request("opened")
    del payload["installation"]
    outcome = router.dispatch("pull_request", payload, OPTIONS)
    assert isinstance(outcome, Ignored)
    assert "installation" in outcome.reason


@pytest.mark.parametrize("action", ["closed", "labeled", "assigned"])
def test_other_pull_request_actions_are_ignored(action: str) -> None:
    assert router.dispatch("pull_request", pull_request(action), OPTIONS) == Ignored(
        f"pull_request.{action} is not handled"
    )


def test_a_payload_missing_a_required_field_is_a_payload_error() -> None:
    payload = pull_request("opened")
    del payload["pull_request"]["head"]
    with pytest.raises(PayloadError, match="head"):
        router.dispatch("pull_request", payload, OPTIONS)


# -- review commands -------------------------------------------------------------------------


def test_a_review_command_on_a_pull_request_queues_a_full_review_of_an_unknown_head() -> None:
    outcome = router.dispatch("issue_comment", comment("/review"), OPTIONS)
    assert outcome == JobRequest(
        installation_id=1,
        repo="Codertocat/Hello-World",
        pr_number=1,
        head_sha="",
        base_sha="",
        full_review=True,
        trigger="command",
        comment_id=492700400,  # the fixture's comment: one comment asks for one review
    )


def test_a_review_command_without_a_comment_id_is_a_payload_error() -> None:
    payload = comment("/review")
    del payload["comment"]["id"]
    with pytest.raises(PayloadError, match="'id'"):
        router.dispatch("issue_comment", router.decode(json.dumps(payload).encode()), OPTIONS)


def test_mentioning_the_app_with_review_is_a_command() -> None:
    outcome = router.dispatch("issue_comment", comment("Thanks!\n@Review-Bot review please"), OPTIONS)
    assert isinstance(outcome, JobRequest)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/review", True),
        ("  /review  ", True),
        ("Looks odd.\r\n/review\r\n", True),
        ("/REVIEW", True),
        ("@review-bot review", True),
        ("/reviewers please", False),
        ("please /review", False),
        ("> /review", False),
        ("@someone-else review", False),
        ("@review-bot reviewed", False),
        ("", False),
    ],
)
def test_what_counts_as_a_review_command(body: str, expected: bool) -> None:
    assert is_review_command(body, "review-bot") is expected


def test_only_slash_review_works_when_the_app_slug_is_unknown() -> None:
    assert not is_review_command("@review-bot review", None)
    assert is_review_command("/review", None)


def test_a_command_on_a_plain_issue_is_ignored() -> None:
    outcome = router.dispatch("issue_comment", comment("/review", on_pull_request=False), OPTIONS)
    assert outcome == Ignored("the comment is on an issue, not a pull request")


def test_an_ordinary_comment_is_ignored() -> None:
    outcome = router.dispatch("issue_comment", load("issue_comment/created.with-installation.payload.json"), OPTIONS)
    assert isinstance(outcome, Ignored)


@pytest.mark.parametrize("association", ["CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "NONE"])
def test_a_command_from_someone_without_write_access_is_ignored(association: str) -> None:
    outcome = router.dispatch("issue_comment", comment("/review", association=association), OPTIONS)
    assert isinstance(outcome, Ignored)
    assert association in outcome.reason


def test_a_command_from_a_bot_is_ignored() -> None:
    outcome = router.dispatch("issue_comment", as_bot(comment("/review")), OPTIONS)
    assert outcome == Ignored("the sender is a bot")


def test_an_edited_comment_is_not_a_command() -> None:
    payload = comment("/review")
    payload["action"] = "edited"
    assert router.dispatch("issue_comment", payload, OPTIONS) == Ignored("issue_comment.edited is not handled")


# -- decoding only what the handlers read ----------------------------------------------------


def _repositories_changed() -> dict[str, Any]:
    payload = load("installation/created.payload.json")
    payload.update(action="removed", repositories_added=[], repositories_removed=[{"full_name": "Codertocat/Old"}])
    return payload


DECODED_CASES: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "opened": ("pull_request", lambda: pull_request("opened")),
    "reopened": ("pull_request", lambda: pull_request("reopened")),
    "ready for review": ("pull_request", lambda: pull_request("ready_for_review", draft=False)),
    "synchronize": ("pull_request", lambda: pull_request("synchronize")),
    "closed": ("pull_request", lambda: pull_request("opened", state="closed")),
    "draft": ("pull_request", lambda: pull_request("opened", draft=True)),
    "by a bot": ("pull_request", lambda: as_bot(pull_request("synchronize"))),
    "title edited": ("pull_request", lambda: {**pull_request("edited"), "changes": {"title": {"from": "x"}}}),
    "base changed": ("pull_request", lambda: {**pull_request("edited"), "changes": {"base": {"ref": {"from": "x"}}}}),
    "no installation": ("pull_request", lambda: {k: v for k, v in pull_request().items() if k != "installation"}),
    "command": ("issue_comment", lambda: comment("/review")),
    "mention": ("issue_comment", lambda: comment("@review-bot review please")),
    "ordinary comment": ("issue_comment", lambda: comment("looks good")),
    "command on an issue": ("issue_comment", lambda: comment("/review", on_pull_request=False)),
    "command by a stranger": ("issue_comment", lambda: comment("/review", association="NONE")),
    "command by a bot": ("issue_comment", lambda: as_bot(comment("/review"))),
    "comment without installation": ("issue_comment", lambda: load("issue_comment/created.payload.json")),
    "installation": ("installation", lambda: load("installation/created.payload.json")),
    "repositories removed": ("installation_repositories", _repositories_changed),
    "ping": ("ping", lambda: load("ping/payload.json")),
    "unknown event": ("star", lambda: {**load("ping/payload.json"), "action": "created"}),
}


@pytest.mark.parametrize("case", sorted(DECODED_CASES))
def test_the_decoded_fields_route_exactly_as_the_whole_payload(case: str) -> None:
    event, build = DECODED_CASES[case]
    whole = build()
    decoded = router.decode(json.dumps(whole, indent=2).encode())
    assert router.dispatch(event, decoded, OPTIONS) == router.dispatch(event, whole, OPTIONS)
    assert delivery_facts(decoded) == delivery_facts(whole)
    assert len(json.dumps(decoded)) < len(json.dumps(whole))  # the rest was not built


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"action": "opened"', "not JSON"),
        (b'{"action": "opened"} trailing', "not JSON"),
        (b"[1, 2, 3]", "Expected `object`, got `array`"),
        (b'"opened"', "Expected `object`, got `str`"),
        (b'{"action": "opened", "installation": 7}', "at `$.installation`"),
        (b'{"pull_request": {"head": ["sha"]}}', "at `$.pull_request.head`"),
    ],
)
def test_a_body_that_is_not_a_payload_is_a_payload_error_naming_the_problem(body: bytes, problem: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(problem)):
        router.decode(body)


def _with(event_payload: Callable[[], dict[str, Any]], path: str, value: Any) -> dict[str, Any]:
    """``event_payload()`` with the field at the dotted ``path`` set to ``value``."""
    payload = event_payload()
    *parents, last = path.split(".")
    target: Any = payload
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[last] = value
    return payload


def _repositories_added() -> dict[str, Any]:
    return {**_repositories_changed(), "action": "added", "repositories_added": [{"full_name": "Codertocat/New"}]}


SHA256_HEAD = "0" * 63 + "a"
DEEP = "(nested 100,000 arrays deep)"  # stands for JSON too deep to write as a Python value

# (how the payload is built, the dotted path of the bad field, its value, what the error names)
MALFORMED: dict[str, tuple[Callable[[], dict[str, Any]], str, Any, str]] = {
    "number not an int": (pull_request, "pull_request.number", "x", "$.pull_request.number"),
    "number a bool": (pull_request, "pull_request.number", True, "$.pull_request.number"),
    "number past 64 bits": (pull_request, "pull_request.number", 2**70, "$.pull_request.number"),
    "number past 32 bits": (pull_request, "pull_request.number", 2**31, "$.pull_request.number"),
    "number zero": (pull_request, "pull_request.number", 0, "$.pull_request.number"),
    "number negative": (pull_request, "pull_request.number", -4, "$.pull_request.number"),
    "full_name an object": (pull_request, "repository.full_name", {}, "$.repository.full_name"),
    "full_name climbing up": (pull_request, "repository.full_name", "../x", "$.repository.full_name"),
    "full_name with a dot segment": (pull_request, "repository.full_name", "octo/..", "$.repository.full_name"),
    "full_name with three parts": (pull_request, "repository.full_name", "octo/x/pulls", "$.repository.full_name"),
    "full_name with a query": (pull_request, "repository.full_name", "octo/x?a=1", "$.repository.full_name"),
    "full_name percent-encoded": (pull_request, "repository.full_name", "octo/%2e%2e", "$.repository.full_name"),
    "full_name with a newline": (pull_request, "repository.full_name", "octo/x\n", "$.repository.full_name"),
    "full_name without owner": (pull_request, "repository.full_name", "/x", "$.repository.full_name"),
    "head sha not hex": (pull_request, "pull_request.head.sha", "HEAD", "$.pull_request.head.sha"),
    "head sha a path": (pull_request, "pull_request.head.sha", "../../x", "$.pull_request.head.sha"),
    "base sha too long": (pull_request, "pull_request.base.sha", BASE + "0", "$.pull_request.base.sha"),
    "installation id a string": (pull_request, "installation.id", "1", "$.installation.id"),
    "installation id negative": (pull_request, "installation.id", -1, "$.installation.id"),
    "installation id past 64 bits": (pull_request, "installation.id", 2**63, "$.installation.id"),
    "action not a string": (pull_request, "action", 5, "$.action"),
    "issue number not an int": (lambda: comment("/review"), "issue.number", "2", "$.issue.number"),
    "comment body an object": (lambda: comment("/review"), "comment.body", {"x": 1}, "$.comment.body"),
    "comment id a string": (lambda: comment("/review"), "comment.id", "1", "$.comment.id"),
    "comment id zero": (lambda: comment("/review"), "comment.id", 0, "$.comment.id"),
    "comment id past 64 bits": (lambda: comment("/review"), "comment.id", 2**63, "$.comment.id"),
    "added repository climbing up": (
        _repositories_added,
        "repositories_added.0.full_name",
        "../../x",
        "$.repositories_added[0].full_name",
    ),
    "deep nesting where nothing is read": (pull_request, "pull_request.body", DEEP, "nested too deeply"),
    "deep nesting where a field is read": (pull_request, "changes", {"base": {"ref": DEEP}}, "nested too deeply"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_signed_payload_with_a_field_of_the_wrong_shape_is_a_payload_error_naming_it(case: str) -> None:
    build, path, value, named = MALFORMED[case]
    body = json.dumps(_with(build, path, value)).encode()
    body = body.replace(json.dumps(DEEP).encode(), b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(PayloadError) as refused:
        router.decode(body)
    assert named in str(refused.value)


def test_every_real_payload_decodes() -> None:
    for path in sorted(Path(WEBHOOKS).rglob("*.json")):
        assert router.decode(path.read_bytes()), path


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("repository.full_name", "octo-org/.github"),
        ("repository.full_name", "a/b.c_d-e"),
        ("repository.full_name", "octocat_acme/x"),  # an Enterprise Managed User's login ends in _shortcode
        ("repository.full_name", "o/..."),
        ("pull_request.head.sha", SHA256_HEAD),  # a SHA-256 repository
        ("pull_request.number", 2**31 - 1),
        ("installation.id", 2**63 - 1),
    ],
)
def test_fields_at_the_edge_of_what_github_sends_are_accepted(path: str, value: Any) -> None:
    decoded = router.decode(json.dumps(_with(pull_request, path, value)).encode())
    outcome = router.dispatch("pull_request", decoded, OPTIONS)
    assert isinstance(outcome, JobRequest)


def test_a_comment_id_past_32_bits_is_taken_whole() -> None:
    decoded = router.decode(json.dumps(_with(lambda: comment("/review"), "comment.id", 2**63 - 1)).encode())
    outcome = router.dispatch("issue_comment", decoded, OPTIONS)
    assert isinstance(outcome, JobRequest)
    assert outcome.comment_id == 2**63 - 1


def test_a_router_without_fields_decodes_whole_objects() -> None:
    assert Router().decode(b'{"a": {"b": [1, null]}}') == {"a": {"b": [1, None]}}
    with pytest.raises(PayloadError, match="not a webhook payload"):
        Router().decode(b"[]")


# -- installations, ping, the router itself --------------------------------------------------


def test_a_new_installation_is_recorded_with_its_repositories(tmp_path: Path) -> None:
    outcome = router.dispatch("installation", load("installation/created.payload.json"), OPTIONS)
    assert outcome == InstallationChange(
        installation_id=957387, change="created", account="Codertocat", added=("Codertocat/Hello-World",)
    )
    store = open_store(f"sqlite:///{tmp_path / 'i.db'}")
    ids = itertools.count()

    def record(change: object) -> bool:
        assert isinstance(change, InstallationChange)
        delivery = Delivery(f"delivery-{next(ids)}", "installation", None, change.installation_id, None)
        return store.record_installation_delivery(delivery, change) == "recorded"

    assert record(outcome)
    assert record(outcome)  # the same event again does no harm
    assert installation_repos(store, 957387) == {"Codertocat/Hello-World"}

    for action, suspended in (("suspend", True), ("unsuspend", False)):
        payload = load("installation/created.payload.json")
        payload["action"] = action
        assert record(router.dispatch("installation", payload, OPTIONS))
        installation = store.installation(957387)
        assert installation is not None
        assert installation.suspended is suspended

    payload = load("installation/created.payload.json")
    payload.update(
        action="added",
        repositories_added=[{"full_name": "Codertocat/Other"}],
        repositories_removed=[{"full_name": "Codertocat/Hello-World"}],
    )
    assert record(router.dispatch("installation_repositories", payload, OPTIONS))
    assert installation_repos(store, 957387) == {"Codertocat/Other"}

    payload["action"] = "deleted"
    assert record(router.dispatch("installation", payload, OPTIONS))
    assert store.installation(957387) is None
    store.close()


def test_ping_is_handled_with_nothing_to_do() -> None:
    assert router.dispatch("ping", load("ping/payload.json")) is None


def test_an_unknown_event_is_ignored() -> None:
    assert router.dispatch("star", {"action": "created"}) == Ignored("star.created is not handled")
    assert router.dispatch("push", {}) == Ignored("push is not handled")


def test_a_router_refuses_two_handlers_for_one_event_and_action() -> None:
    local = Router()

    @local.register("push")
    def first(payload: Any, options: WebhookOptions) -> None:
        return None

    with pytest.raises(ValueError, match="already"):
        local.register("push")(first)
    assert local.handles("push", "anything")
    assert not local.handles("star")
