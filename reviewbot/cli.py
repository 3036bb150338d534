"""The command line: the only place that prints or chooses an exit code.

Exit codes: 0 done; 1 a finding at or above ``--fail-on``; 2 a usage, configuration or input
error; 3 the model endpoint failed for every request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from reviewbot import __version__, head_files
from reviewbot.engine.context import head_paths
from reviewbot.engine.diff import GIT_DIFF_OPTIONS, Diff, parse_diff
from reviewbot.engine.pricing import review_cost
from reviewbot.engine.prompt import ReviewContext
from reviewbot.engine.result import ReviewResult
from reviewbot.engine.review import Prepared, ReviewOptions, execute, prepare
from reviewbot.errors import ConfigError, InputError, ModelError, ReviewbotError
from reviewbot.eval import command as eval_command
from reviewbot.money import costs, prices
from reviewbot.render import FORMATS, render_plan, render_result
from reviewbot.settings import Settings, load_settings
from reviewbot.severity import Severity

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_MODEL_FAILED = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reviewbot",
        description="Review code changes with a cheap code model over any OpenAI-compatible endpoint.",
    )
    parser.add_argument("--version", action="version", version=f"reviewbot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    review = commands.add_parser(
        "review",
        help="review a diff file, standard input, or a git revision range",
        description="Review a unified diff and print the findings and what the review cost.",
    )
    source = review.add_mutually_exclusive_group()
    source.add_argument("diff", nargs="?", help="diff file to review, or - for standard input")
    source.add_argument("--git", metavar="RANGE", help="review `git diff RANGE`, e.g. main...HEAD")
    source.add_argument("--pr", metavar="OWNER/REPO#N", help="review a pull request on GitHub (needs GITHUB_TOKEN)")
    review.add_argument("--post", action="store_true", help="with --pr: post the review as the token's user")
    review.add_argument("--format", "-f", choices=FORMATS, default="text", help="output format (default: text)")
    review.add_argument("--output", "-o", metavar="FILE", help="write the output to FILE instead of stdout")
    review.add_argument(
        "--dry-run", action="store_true", help="show what would be sent and what it would cost; call no model"
    )
    review.add_argument(
        "--fail-on",
        choices=[severity.value for severity in Severity],
        metavar="SEVERITY",
        help="exit with 1 if a finding is at least this severe (critical, high, medium, low, info)",
    )
    review.add_argument("--model", help="model name (REVIEWBOT_MODEL)")
    review.add_argument("--base-url", help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
    review.add_argument("--concurrency", type=int, help="model requests in flight at once")
    review.add_argument("--context-window", type=int, help="the model's context window in tokens")
    review.add_argument(
        "--min-severity",
        choices=[severity.value for severity in Severity],
        metavar="SEVERITY",
        help="leave out findings below this severity",
    )
    review.add_argument("--max-findings", type=int, help="keep at most this many findings, most severe first")
    review.add_argument("--include", action="append", metavar="GLOB", help="only review matching files (repeatable)")
    review.add_argument("--exclude", action="append", metavar="GLOB", help="never review matching files (repeatable)")
    review.add_argument("--max-cost", type=float, metavar="USD", help="stop planning requests past this cost")
    review.add_argument("--nits", action="store_true", default=None, help="also ask for style and naming remarks")
    review.add_argument(
        "--context",
        choices=("diff", "function"),
        help="what the model sees of each hunk: the hunk alone, or also its enclosing function (REVIEWBOT_CONTEXT)",
    )
    review.add_argument(
        "--repo-dir",
        metavar="DIR",
        help="with --context function and a diff file: a checkout of the diff's new side to read the files from",
    )
    review.add_argument("--title", default="", help="title of the change, shown to the model")
    review.add_argument("--description", default="", help="description of the change, shown to the model")
    review.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colour in text output")
    serve = commands.add_parser(
        "serve",
        help="run the GitHub App: the webhook server and the review worker",
        description="Receive GitHub webhooks and post one review per pull-request head commit.",
    )
    serve.add_argument("--host", help="address to listen on (REVIEWBOT_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (REVIEWBOT_PORT or PORT, default 8000)")
    serve.add_argument(
        "--no-worker", action="store_true", help="only receive webhooks; `reviewbot worker` processes run the reviews"
    )
    worker = commands.add_parser(
        "worker",
        help="run the review worker alone (beside `serve --no-worker`)",
        description="Take review jobs from the database and post the reviews, until SIGTERM or SIGINT.",
    )
    worker.add_argument("--concurrency", type=int, default=2, metavar="N", help="reviews at once (default: 2)")
    action = commands.add_parser(
        "action",
        help="review the pull request of a GitHub Actions run (the reviewbot action runs this)",
        description=(
            "Review the pull request of the GitHub Actions event in GITHUB_EVENT_PATH with the workflow's token, "
            "post the review, and write the step's outputs and job summary. Inputs arrive as INPUT_* variables."
        ),
    )
    action.add_argument(
        "--fail-on",
        choices=[severity.value for severity in Severity],
        metavar="SEVERITY",
        help="exit with 1 if a finding is at least this severe (input fail-on)",
    )
    action.add_argument("--sarif", metavar="FILE", help="also write the findings as SARIF to FILE (input sarif)")
    commands.add_parser(
        "migrate",
        help="create or update the database schema and print its version",
        description="Bring the database at REVIEWBOT_DATABASE_URL to this release's schema.",
    )
    costs.add_parser(commands)
    prices.add_parser(commands)
    eval_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "worker":
            return _worker(args)
        if args.command == "migrate":
            return _migrate()
        if args.command == "costs":
            return costs.run(args)
        if args.command == "eval":
            return eval_command.run(args)
        if args.command == "action":
            return _action(args)
        if args.command == "prices":
            return prices.run(args)
        return _review(args)
    except ModelError as exc:
        print(f"reviewbot: {exc}", file=sys.stderr)
        return EXIT_MODEL_FAILED
    except ReviewbotError as exc:
        print(f"reviewbot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("reviewbot: interrupted", file=sys.stderr)
        return 130


def _serve(args: argparse.Namespace) -> int:
    from reviewbot.logs import configure_logging
    from reviewbot.service.server import serve

    settings = load_settings(host=args.host, port=args.port)
    configure_logging(settings)  # REVIEWBOT_LOG_FORMAT; secrets redacted
    serve(settings, host=settings.host, port=settings.port, worker=not args.no_worker)
    return EXIT_OK


def _worker(args: argparse.Namespace) -> int:
    from reviewbot.logs import configure_logging
    from reviewbot.service.server import work

    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, not {args.concurrency}")
    settings = load_settings()
    configure_logging(settings)
    work(settings, concurrency=args.concurrency)
    return EXIT_OK


def _migrate() -> int:
    from reviewbot.store.store import open_store

    store = open_store(load_settings().database_url)  # opening migrates
    try:
        version, before = store.schema_version(), store.migrated_from
    finally:
        store.close()
    change = f"migrated from version {before}" if before != version else "up to date"
    print(f"schema version {version} ({change}) in {store.location}")
    return EXIT_OK


def _review(args: argparse.Namespace) -> int:
    settings = load_settings(
        model=args.model,
        base_url=args.base_url,
        concurrency=args.concurrency,
        context_window=args.context_window,
        min_severity=args.min_severity,
        max_findings=args.max_findings,
        include=args.include,
        exclude=args.exclude,
        max_cost=args.max_cost,
        include_nits=args.nits,
        context=args.context,
    )
    color = _use_color(args)
    _check_output(args)
    if args.pr:
        return _review_pull_request(args, settings, color)
    if args.post:
        raise ConfigError("--post works with --pr only")
    data = _read_diff(args)
    diff = parse_diff(data)
    if not diff.files:
        print("reviewbot: the diff is empty; there is nothing to review", file=sys.stderr)
        if args.format == "text":
            return EXIT_OK  # the other formats still write their (empty) document for scripts
    options = ReviewOptions.from_settings(settings)
    heads = _head_files(args, diff, options)
    prepared = prepare(diff, options, ReviewContext(title=args.title, description=args.description), heads)
    if heads is not None and prepared.without_context:
        left_out = ", ".join(prepared.without_context[:5]) + (" …" if len(prepared.without_context) > 5 else "")
        print(
            f"reviewbot: function context left out for {len(prepared.without_context)} file(s) whose new text "
            f"could not be read or does not match the diff: {left_out}",
            file=sys.stderr,
        )
    if args.dry_run:
        _emit(args, render_plan(prepared, args.format, color=color))
        return EXIT_OK
    progress = _Progress(sys.stderr) if args.format == "text" and sys.stderr.isatty() else None
    result = asyncio.run(_run(prepared, settings, progress))
    cost = review_cost(result, options.prices)
    _emit(args, render_result(result, args.format, cost=cost, color=color))
    _say_if_all_failed(result)
    return _exit_code(args, result)


def _action(args: argparse.Namespace) -> int:
    from reviewbot.service import action

    try:
        run = action.ActionRun.from_environment(os.environ)
        event = action.PullRequestEvent.read(run)
        fail_on = args.fail_on or os.environ.get(action.input_variable("fail-on"), "").strip() or None
        sarif = args.sarif or os.environ.get(action.input_variable("sarif"), "").strip() or None
        if fail_on is not None and fail_on not in {severity.value for severity in Severity}:
            raise ConfigError(f"fail-on {fail_on!r} is not a severity; use one of critical, high, medium, low, info")
        settings = action.settings_from_inputs(os.environ, run)
        outcome = asyncio.run(action.run_action(settings, run, event))
    except ReviewbotError as exc:
        print(f"::error title=reviewbot::{_workflow_text(str(exc))}")
        return EXIT_MODEL_FAILED if isinstance(exc, ModelError) else EXIT_USAGE
    if outcome.skipped is not None:
        print(f"::notice title=reviewbot::{_workflow_text(outcome.skipped)}")
        return EXIT_OK
    reviewed = outcome.reviewed
    assert reviewed is not None
    if reviewed.result is None or outcome.cost is None:
        return EXIT_OK
    # The review quotes the model, which a pull request can steer: a line of it reading "::error …"
    # or "::stop-commands::…" would be a workflow command. The runner ignores commands between
    # ::stop-commands::TOKEN and ::TOKEN:: (an unguessable token), so the text goes between them.
    # https://docs.github.com/en/actions/writing-workflows/choosing-what-your-workflow-does/workflow-commands-for-github-actions#stopping-and-starting-workflow-commands
    token = secrets.token_hex(16)
    print(f"::stop-commands::{token}")
    sys.stdout.write(render_result(reviewed.result, "text", cost=outcome.cost))
    print(f"::{token}::")
    if sarif is not None:
        Path(sarif).write_text(render_result(reviewed.result, "sarif", cost=outcome.cost) + "\n", encoding="utf-8")
    if outcome.review_url:
        print(f"reviewbot: posted {outcome.review_url}")
    elif outcome.not_posted:
        print(f"::notice title=reviewbot::not posted: {_workflow_text(outcome.not_posted)}")
    elif reviewed.state == "failed":
        print(f"::error title=reviewbot::{_workflow_text(reviewed.note)}; nothing was posted")
        return EXIT_MODEL_FAILED
    else:
        print(f"::warning title=reviewbot::not posted: {_workflow_text(reviewed.note)}")
    if fail_on and any(finding.severity.at_least(Severity(fail_on)) for finding in reviewed.result.findings):
        print(f"::error title=reviewbot::a finding is at least {fail_on} (fail-on)")
        return EXIT_FINDINGS
    return EXIT_OK


def _workflow_text(text: str) -> str:
    """``text`` as the message of a workflow command: ``%``, CR and LF escaped as the runner reads them."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _say_if_all_failed(result: ReviewResult) -> None:
    """One line on stderr whatever the format: stdout may be a file or a pipe nobody reads."""
    if result.all_requests_failed:
        reasons = "; ".join(dict.fromkeys(failure.reason for failure in result.failed))
        print(f"reviewbot: every model request failed, nothing was reviewed: {reasons}", file=sys.stderr)


def _exit_code(args: argparse.Namespace, result: ReviewResult) -> int:
    if result.all_requests_failed:
        return EXIT_MODEL_FAILED
    if args.fail_on and any(finding.severity.at_least(Severity(args.fail_on)) for finding in result.findings):
        return EXIT_FINDINGS
    return EXIT_OK


def _review_pull_request(args: argparse.Namespace, settings: Settings, color: bool) -> int:
    from reviewbot.service.remote import review_pull_request

    reviewed = asyncio.run(review_pull_request(settings, args.pr, dry_run=args.dry_run, post=args.post))
    if reviewed.prepared is None:
        # Nothing was reviewed: already reviewed at this head (done), or a reason not to (dropped):
        # closed, a draft, over a budget, a pending review of the user's own.
        print(f"reviewbot: {reviewed.note}", file=sys.stderr)
        return EXIT_OK if reviewed.state == "done" else EXIT_USAGE
    if reviewed.result is None:
        _emit(args, render_plan(reviewed.prepared, args.format, color=color))
    else:
        cost = review_cost(reviewed.result, reviewed.prepared.options.prices)
        _emit(args, render_result(reviewed.result, args.format, cost=cost, color=color))
        _say_if_all_failed(reviewed.result)
    for problem in reviewed.config.problems if reviewed.config is not None else ():
        print(f"reviewbot: {problem}", file=sys.stderr)
    if reviewed.result is None:
        return EXIT_OK
    if reviewed.posted and reviewed.pull is not None:
        print(f"reviewbot: posted review {reviewed.review_id} on {reviewed.pull.html_url}", file=sys.stderr)
    elif reviewed.state == "failed" and args.post:
        print("reviewbot: nothing was posted", file=sys.stderr)
    elif args.post:
        print(f"reviewbot: not posted: {reviewed.note}", file=sys.stderr)
        if reviewed.state == "dropped":  # refused by GitHub, or the head moved on
            return EXIT_USAGE
    return _exit_code(args, reviewed.result)


async def _run(prepared: Prepared, settings: Settings, progress: _Progress | None) -> ReviewResult:
    # Imported here so a dry run never loads the HTTP client stack.
    from reviewbot.engine.fallback import ModelChain

    if not prepared.plan.requests:
        return await execute(prepared, None)
    async with ModelChain.from_settings(settings) as client:
        try:
            return await execute(prepared, client, progress.update if progress else None)
        finally:
            if progress is not None:
                progress.clear()


class _Progress:
    """A one-line progress display on a terminal."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def update(self, done: int, total: int) -> None:
        self._stream.write(f"\rreviewbot: reviewed {done} of {total} part{'s' if total != 1 else ''}…")
        self._stream.flush()

    def clear(self) -> None:
        self._stream.write("\r\033[K")
        self._stream.flush()


def _head_files(args: argparse.Namespace, diff: Diff, options: ReviewOptions) -> dict[str, str] | None:
    """The reviewed files as the diff leaves them, when function context is asked for and they can be read."""
    if options.context != "function":
        return None
    paths = head_paths(diff, options.rules)
    if args.git:
        return head_files.from_git(args.git, paths)
    if args.repo_dir:
        return head_files.from_folder(Path(args.repo_dir), paths)
    print(
        "reviewbot: function context needs the files the diff leads to; pass --repo-dir DIR (or use --git RANGE). "
        "Reviewing with the diff alone",
        file=sys.stderr,
    )
    return None


def _read_diff(args: argparse.Namespace) -> bytes:
    if args.git:
        return _git_diff(args.git)
    if args.diff in (None, "-"):
        if args.diff is None and sys.stdin.isatty():
            raise InputError("no diff given: pass a diff file, - for standard input, or --git RANGE")
        return sys.stdin.buffer.read()
    path = Path(args.diff)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(
            f"{args.diff} does not exist; pass a diff file, - for standard input, or --git RANGE"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read {args.diff}: {exc.strerror}") from exc


def _git_diff(revisions: str) -> bytes:
    command = ["diff", *GIT_DIFF_OPTIONS, revisions, "--"]
    return head_files.run_git(command, shown=f"git diff {revisions}", timeout=120)


def _use_color(args: argparse.Namespace) -> bool:
    if args.format != "text" or args.output:
        return False
    if args.color != "auto":
        return bool(args.color == "always")
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _check_output(args: argparse.Namespace) -> None:
    """Refuse an output path that cannot be written before any model is paid for."""
    if not args.output:
        return
    path = Path(args.output)
    folder = path.parent
    if path.is_dir():
        raise ConfigError(f"--output {args.output} is a folder; name a file in it")
    if not folder.is_dir():
        raise ConfigError(f"--output {args.output}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--output {args.output} cannot be written here (permission denied)")


def _emit(args: argparse.Namespace, text: str) -> None:
    if not text.endswith("\n"):
        text += "\n"
    if not args.output:
        sys.stdout.write(text)
        return
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--output {args.output} could not be written: {exc.strerror}") from None


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
