"""The intervals of an eval report: Wilson score intervals for a rate, and a paired bootstrap over
cases for the difference between two models' recall.

A rate (recall, precision) gets the Wilson score interval (Wilson 1927; Newcombe 1998, method 3),
which stays inside 0..1 and behaves at 0 and n. The difference of two models' recall on the
same cases gets a paired percentile bootstrap: the cases are resampled with replacement, each
resample keeping both models' results for the case together, and the 2.5th and 97.5th
percentiles of the resampled differences are the interval. Resampling whole cases keeps the
labels of one case together, as they are not independent. The seed is fixed, so a report is
reproducible to the digit.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile
RESAMPLES = 2000
SEED = 1


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


def wilson(successes: int, trials: int, z: float = Z_95) -> Interval | None:
    """The Wilson score interval of ``successes`` out of ``trials``; None when there were no trials."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes out of {trials} trials")
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # Exactly 0 and 1 at the ends, whatever the rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Interval(low, high)


@dataclass(frozen=True, slots=True)
class PairedCase:
    """One case, seen by two models: its labels, and how many each model caught."""

    labels: int
    caught_first: int
    caught_second: int


def recall_difference(cases: Sequence[PairedCase]) -> float | None:
    """The second model's recall minus the first's, over ``cases``; None without labels."""
    labels = sum(case.labels for case in cases)
    if labels == 0:
        return None
    return (sum(case.caught_second for case in cases) - sum(case.caught_first for case in cases)) / labels


def paired_bootstrap(
    cases: Sequence[PairedCase], resamples: int = RESAMPLES, seed: int = SEED, level: float = 0.95
) -> Interval | None:
    """A percentile bootstrap interval of :func:`recall_difference`, resampling cases in pairs."""
    if recall_difference(cases) is None:
        return None
    generator = random.Random(seed)  # noqa: S311 - resampling wants reproducible numbers, not secret ones
    count = len(cases)
    differences = []
    for _ in range(resamples):
        sample = [cases[generator.randrange(count)] for _ in range(count)]
        difference = recall_difference(sample)
        if difference is not None:  # a resample of only unlabelled cases says nothing
            differences.append(difference)
    differences.sort()
    tail = (1 - level) / 2
    return Interval(quantile(differences, tail), quantile(differences, 1 - tail))


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values, interpolating between neighbours (numpy's default rule)."""
    if not ordered:
        raise ValueError("no values")
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
