from __future__ import annotations

from pathlib import Path

from reviewbot.engine.filters import FilterRules
from reviewbot.engine.price_layers import Prices
from reviewbot.engine.repo_config import CONFIG_PATH, RepoConfig, apply_repo_config, parse_repo_config
from reviewbot.engine.review import ReviewOptions
from reviewbot.severity import Severity

ALLOWED = ["qwen3-coder-30b", "deepseek-coder"]


def base_options() -> ReviewOptions:
    return ReviewOptions(
        model="qwen3-coder-30b",
        context_window=32_768,
        max_output_tokens=4_096,
        rules=FilterRules(exclude=("vendor/**",)),
        prices=Prices(),
        extra_instructions="Operator says hi.",
    )


def test_a_repository_without_the_file_gets_the_defaults() -> None:
    assert parse_repo_config(None, ALLOWED) == RepoConfig()


def test_reads_every_setting() -> None:
    raw = b"""
enabled = true
include = ["src/**"]
exclude = "docs/**"
min_severity = "Medium"
max_comments = 7
review_drafts = true
extra_instructions = "  We target Python 3.9.  "
model = "deepseek-coder"
"""
    config = parse_repo_config(raw, ALLOWED)
    assert config == RepoConfig(
        enabled=True,
        include=("src/**",),
        exclude=("docs/**",),
        min_severity=Severity.MEDIUM,
        max_comments=7,
        review_drafts=True,
        extra_instructions="We target Python 3.9.",
        model="deepseek-coder",
    )


def test_a_file_that_does_not_parse_leaves_the_defaults_and_says_why() -> None:
    config = parse_repo_config(b"enabled = \n", ALLOWED)
    assert (config.enabled, config.include) == (True, ())
    assert len(config.problems) == 1
    assert "could not be read" in config.problems[0]


def test_bad_values_are_reported_one_by_one_and_the_rest_applies() -> None:
    raw = b'min_severity = "urgent"\nmax_comments = 0\nmodel = "gpt-4o"\ncolour = "blue"\nexclude = ["x/**"]\n'
    config = parse_repo_config(raw, ALLOWED)
    assert config.exclude == ("x/**",)
    assert (config.min_severity, config.max_comments, config.model) == (None, None, None)
    assert any("min_severity must be one of" in problem for problem in config.problems)
    assert any("max_comments must be a whole number" in problem for problem in config.problems)
    assert any("'gpt-4o' is not among the models the operator allows" in problem for problem in config.problems)
    assert any("unknown setting 'colour'" in problem for problem in config.problems)


def test_a_repository_cannot_pick_a_model_when_the_operator_allows_none() -> None:
    config = parse_repo_config(b'model = "qwen3-coder-30b"\n', [])
    assert config.model is None
    assert "(none)" in config.problems[0]


def test_applying_narrows_the_operator_options() -> None:
    config = parse_repo_config(
        b'exclude = ["docs/**"]\nmin_severity = "high"\nextra_instructions = "Be brief."\n', ALLOWED
    )
    options = apply_repo_config(base_options(), config)
    assert options.rules.exclude == ("vendor/**", "docs/**")
    assert options.min_severity is Severity.HIGH
    assert options.extra_instructions.startswith("Operator says hi.")
    assert "Be brief." in options.extra_instructions
    assert options.model == "qwen3-coder-30b"


def test_applying_the_defaults_changes_nothing() -> None:
    assert apply_repo_config(base_options(), RepoConfig()) == base_options()


def test_the_repositorys_own_config_reads_without_problems() -> None:
    own = (Path(__file__).resolve().parents[1] / ".github" / "reviewbot.toml").read_bytes()
    config = parse_repo_config(own, [])
    assert config.problems == ()
    assert "reviewbot/eval/starter/**" in config.exclude


def test_a_repository_can_ask_for_function_context_and_a_bad_value_is_a_problem() -> None:
    options = base_options()
    config = parse_repo_config(b'context = "function"\n', [])
    assert config.problems == ()
    assert apply_repo_config(options, config).context == "function"
    assert apply_repo_config(options, parse_repo_config(b"", [])).context == options.context
    bad = parse_repo_config(b'context = "everything"\n', [])
    (problem,) = bad.problems
    assert problem == f'{CONFIG_PATH}: context must be "diff" or "function", not \'everything\'; the default applies'
