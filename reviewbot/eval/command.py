"""``reviewbot eval``: measure how well models review, and what they cost, on labelled cases.

    reviewbot eval run flask-bench/ --model qwen3-coder-30b --model gpt-4o@https://api.openai.com/v1,api_key_env=K
    reviewbot eval run reviewbot:starter --dry-run

Exit codes are those of ``reviewbot review``: 0 done, 2 a usage, configuration or input error
(including a run estimated or stopped at ``--max-cost``), 3 a model that answered nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from reviewbot.errors import ConfigError
from reviewbot.eval import build
from reviewbot.eval.cache import AnswerCache, default_folder
from reviewbot.eval.cases import load_set
from reviewbot.eval.completer import price_needed
from reviewbot.eval.matching import DEFAULT_TOLERANCE
from reviewbot.eval.metrics import comparisons, score_run
from reviewbot.eval.models import OPTIONS, models_under_test, with_variants
from reviewbot.eval.plan import plan_run, refuse_over_cap
from reviewbot.eval.report import Report, render_markdown, render_plan_markdown
from reviewbot.eval.report_json import plan_to_dict, report_to_dict
from reviewbot.eval.terminal import ProgressLine, confirm
from reviewbot.render.json_out import dumps

FORMATS = ("markdown", "json")
EXIT_OK, EXIT_USAGE, EXIT_MODEL_FAILED = 0, 2, 3


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``reviewbot eval`` and its subcommands on the command line."""
    parser = commands.add_parser(
        "eval",
        help="measure how well models review, and what they cost, on labelled cases",
        description="Run the review engine on labelled cases for one or more models and report recall, precision, "
        "false alarms, tokens, cost and latency side by side.",
    )
    actions = parser.add_subparsers(dest="eval_command", required=True, metavar="{run,build}")
    run_parser = actions.add_parser(
        "run",
        help="review every case with every model and print the report",
        description="Review every case of SET with each --model (the configured model without one), exactly as "
        "`reviewbot review` reviews a diff, and report the figures of each model and each against the first.",
    )
    run_parser.add_argument("set", metavar="SET", help="a case folder (or its cases.jsonl)")
    run_parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="SPEC",
        help=f"NAME[@BASE_URL][,OPTION=VALUE…], repeatable; options: api_key_env, label, {', '.join(OPTIONS)}",
    )
    run_parser.add_argument(
        "--judge",
        metavar="SPEC",
        help="a model (same SPEC as --model) asked whether each finding near a labelled bug describes it; "
        "the report then shows recall and precision by location and by location and judge",
    )
    run_parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="also run each model with this setting changed, as a row of its own: context=function",
    )
    run_parser.add_argument("--dry-run", action="store_true", help="print what would be sent and cost, send nothing")
    run_parser.add_argument(
        "--max-cost", type=float, metavar="USD", help="refuse a run estimated past USD, and never spend past it"
    )
    run_parser.add_argument("--yes", "-y", action="store_true", help="do not ask before sending (on a terminal)")
    run_parser.add_argument("--cache", metavar="DIR", help=f"where answers are kept (default: {_shown_cache()})")
    run_parser.add_argument("--no-cache", action="store_true", help="neither read nor keep answers")
    run_parser.add_argument(
        "--tolerance",
        type=int,
        default=DEFAULT_TOLERANCE,
        metavar="N",
        help=f"a finding within N lines of a labelled bug catches it (default: {DEFAULT_TOLERANCE})",
    )
    run_parser.add_argument("--concurrency", type=int, metavar="N", help="requests in flight per model")
    run_parser.add_argument("--retries", type=int, metavar="N", help="retries of a request after 429, 5xx or timeout")
    run_parser.add_argument("--format", "-f", choices=FORMATS, default="markdown", help="report format")
    run_parser.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    run_parser.add_argument(
        "--chart",
        metavar="FILE",
        help="also draw recall against USD per review, one point per model, to FILE (.svg or .png); "
        "needs pip install 'reviewbot[eval]'",
    )
    build.add_parser(actions)


def run(args: argparse.Namespace) -> int:
    """``reviewbot eval …``: the subcommand named."""
    if args.eval_command == "build":
        return build.build(args)
    return _run_cases(args)


def _run_cases(args: argparse.Namespace) -> int:
    if args.tolerance < 0:
        raise ConfigError(f"--tolerance must be 0 or more, not {args.tolerance}")
    _check_output(args.output)
    if args.chart:
        from reviewbot.eval.chart import check_chart

        check_chart(args.chart)
    case_set = load_set(args.set)
    shared: dict[str, object] = {"concurrency": args.concurrency, "max_retries": args.retries}
    models = with_variants(models_under_test(args.model, shared), args.variant)
    judge = models_under_test([args.judge], shared)[0] if args.judge else None
    cache = AnswerCache(None if args.no_cache else Path(args.cache) if args.cache else default_folder())
    plan = plan_run(case_set, models, cache)
    if args.dry_run:
        json_plan = args.format == "json"
        _emit(
            args,
            dumps(plan_to_dict(plan, case_set.name, judge))
            if json_plan
            else render_plan_markdown(plan, case_set.name, judge),
        )
        return EXIT_OK
    if args.max_cost is not None:
        refuse_over_cap(plan, args.max_cost)
        if judge is not None and judge.options.prices.quote(judge.model) is None:
            raise ConfigError(price_needed(judge).replace("--model", "--judge"))
    if not args.yes and _interactive() and not confirm(plan, sys.stderr, input):
        print("reviewbot: nothing was sent", file=sys.stderr)
        return EXIT_OK
    from reviewbot.eval.runner import run_plan

    progress = ProgressLine(sys.stderr, plan) if _interactive() else None
    try:
        outcome = asyncio.run(
            run_plan(
                plan,
                cache,
                max_cost=args.max_cost,
                progress=progress.update if progress else None,
                judge=judge,
                tolerance=args.tolerance,
            )
        )
    finally:
        if progress is not None:
            progress.clear()
    scores = score_run(outcome.models, args.tolerance, judge)
    report = Report(
        set_name=case_set.name,
        cases=len(case_set.cases),
        labels=case_set.labels,
        tolerance=args.tolerance,
        scores=scores,
        comparisons=comparisons(scores),
        spent_usd=outcome.spent_usd,
        judge=judge,
    )
    _emit(args, dumps(report_to_dict(report)) if args.format == "json" else render_markdown(report))
    if args.chart:
        from reviewbot.eval.chart import write_chart

        write_chart(scores, args.chart, case_set.name)
        print(f"Chart: {args.chart}", file=sys.stderr if args.format == "json" and not args.output else sys.stdout)
    # A model that answered nothing has figures that mean nothing: say so, as review does.
    silent = [score.label for score in scores if score.failed_requests and not score.usage.requests]
    if silent:
        print(f"reviewbot: every request of {', '.join(silent)} failed; see the report's notes", file=sys.stderr)
        return EXIT_MODEL_FAILED
    return EXIT_OK


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _check_output(output: str | None) -> None:
    """Refuse an output path that cannot be written before any model is paid for."""
    if output and not Path(output).parent.is_dir():
        raise ConfigError(f"--output {output}: the folder {Path(output).parent} does not exist")
    if output and Path(output).is_dir():
        raise ConfigError(f"--output {output} is a folder; name a file in it")


def _emit(args: argparse.Namespace, text: str) -> None:
    if not args.output:
        sys.stdout.write(text)
        return
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--output {args.output} could not be written: {exc.strerror}") from None


def _shown_cache() -> str:
    return "$XDG_CACHE_HOME/reviewbot/eval or ~/.cache/reviewbot/eval"
