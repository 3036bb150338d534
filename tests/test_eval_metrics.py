"""The pure parts of an eval's figures: which findings catch which labels, and the intervals."""

from __future__ import annotations

import pytest

from fixtures_path import FIXTURE_DIFFS
from reviewbot.engine.diff import Side, parse_diff
from reviewbot.engine.result import Category, Finding
from reviewbot.eval.cases import Label
from reviewbot.eval.matching import match_case
from reviewbot.eval.stats import PairedCase, paired_bootstrap, quantile, recall_difference, wilson
from reviewbot.severity import Severity

# Three hunks; the second removes old line 99, the third turns old 126 into new 124.
MINITWIT = parse_diff((FIXTURE_DIFFS / "flask-73a47a0db1a1.diff").read_bytes())
PATH = "examples/minitwit/minitwit.py"
REMOVED_99 = Label(PATH, Side.LEFT, 99, 99, "k", "")
ADDED_124 = Label(PATH, Side.RIGHT, 124, 124, "k", "")


def finding(line: int | None, side: Side = Side.RIGHT, start: int | None = None, path: str = PATH) -> Finding:
    return Finding(path, line, side, Severity.HIGH, Category.BUG, "t", "b", start_line=start)


@pytest.mark.parametrize(
    ("found", "tolerance", "caught"),
    [
        (finding(124), 3, True),
        (finding(121), 3, True),  # three lines before
        (finding(127), 3, True),
        (finding(128), 3, False),  # four lines after
        (finding(121), 2, False),
        (finding(120, start=118), 3, False),
        (finding(121, start=118), 3, True),  # a range reaching within three lines
        (finding(130, start=110), 0, True),  # a range over the label
        (finding(124, path="other.py"), 3, False),
        (finding(None), 3, False),  # a note on the file catches nothing
        (finding(126, Side.LEFT), 3, True),  # the removed line the label replaced: one row away in the diff
        (finding(126, Side.LEFT), 0, False),
    ],
)
def test_a_finding_catches_a_label_near_it_on_its_file(found: Finding, tolerance: int, caught: bool) -> None:
    match = match_case(MINITWIT, [ADDED_124], [found], tolerance)
    assert match.caught == (caught,)
    assert match.hits == (caught,)


@pytest.mark.parametrize(
    ("found", "caught"),
    [
        (finding(99, Side.LEFT), True),
        (finding(98), True),  # the line after the removal, one row below it
        (finding(95), True),  # three rows above
        (finding(124), False),  # another hunk: far from it in the file, however the rows count
        (finding(96, Side.LEFT), True),  # same side, three lines before
    ],
)
def test_a_label_on_removed_lines_is_caught_from_either_side(found: Finding, caught: bool) -> None:
    assert match_case(MINITWIT, [REMOVED_99], [found]).caught == (caught,)


def test_each_label_and_each_finding_is_counted_once() -> None:
    findings = [finding(124), finding(125), finding(99, Side.LEFT), finding(10)]
    match = match_case(MINITWIT, [ADDED_124, REMOVED_99, Label(PATH, Side.RIGHT, 12, 12, "k", "")], findings)
    assert match.caught == (True, True, True)  # line 10 is within three lines of the label on 12
    assert match.hits == (True, True, True, True)
    assert (match.labels_caught, match.false_alarms) == (3, 0)
    assert match_case(MINITWIT, [], findings).false_alarms == 4


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    # Newcombe (1998), Table I, method 3 (the Wilson score interval).
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_matches_the_published_intervals(successes: int, trials: int, low: float, high: float) -> None:
    interval = wilson(successes, trials)
    assert interval is not None
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)


def test_wilson_is_exact_at_the_ends_and_undefined_without_trials() -> None:
    assert wilson(6, 6) is not None
    assert wilson(6, 6).high == 1.0  # type: ignore[union-attr]
    assert wilson(0, 6).low == 0.0  # type: ignore[union-attr]
    assert wilson(0, 0) is None
    with pytest.raises(ValueError, match="7 successes out of 6"):
        wilson(7, 6)


def test_quantile_interpolates_between_neighbours() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([float(n) for n in range(101)], 0.025) == pytest.approx(2.5)
    assert quantile([7.0], 0.975) == 7.0


def test_the_paired_bootstrap_is_reproducible_and_honest() -> None:
    same = [PairedCase(2, 1, 1), PairedCase(1, 0, 0), PairedCase(3, 3, 3)]
    assert paired_bootstrap(same) is not None
    assert (paired_bootstrap(same).low, paired_bootstrap(same).high) == (0, 0)  # type: ignore[union-attr]
    mixed = [PairedCase(1, 1, 0), PairedCase(1, 0, 1), PairedCase(2, 1, 2), PairedCase(1, 1, 1), PairedCase(0, 0, 0)]
    assert recall_difference(mixed) == pytest.approx(1 / 5)
    interval = paired_bootstrap(mixed)
    assert interval is not None
    assert interval == paired_bootstrap(mixed)  # the seed is fixed
    assert interval != paired_bootstrap(mixed, seed=2)
    assert -1 <= interval.low < 1 / 5 < interval.high <= 1
    assert paired_bootstrap([PairedCase(0, 0, 0)]) is None


def test_resamples_with_no_label_are_left_out() -> None:
    # One labelled case among nine clean ones: the resamples that miss it say nothing.
    cases = [PairedCase(1, 0, 1), *(PairedCase(0, 0, 0) for _ in range(9))]
    interval = paired_bootstrap(cases)
    assert interval is not None
    assert (interval.low, interval.high) == (1, 1)
