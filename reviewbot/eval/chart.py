"""The eval chart (``--chart FILE``): recall against dollars per review, one point per model with
its 95% interval as an error bar, written as SVG or PNG by the file's extension.

It is drawn with matplotlib, an optional extra (``pip install 'reviewbot[eval]'``), on its Agg
backend and through :class:`matplotlib.figure.Figure` rather than pyplot, so no display is ever
needed and no global figure is kept (matplotlib's "Embedding in a web application server").
A model whose cost is unknown (no price) or that had no labelled bug to catch has no place on
the chart; a line under it names such models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from reviewbot.errors import ConfigError
from reviewbot.eval.metrics import ModelScore

SUFFIXES = (".svg", ".png")
EXTRA_MISSING = "--chart needs matplotlib: pip install 'reviewbot[eval]'"


@dataclass(frozen=True, slots=True)
class Point:
    """One model on the chart."""

    label: str
    usd_per_review: float
    recall: float
    low: float  # the recall's 95% interval
    high: float


def chart_points(scores: Sequence[ModelScore]) -> tuple[tuple[Point, ...], tuple[str, ...]]:
    """The models the chart shows, and the labels of those it cannot place."""
    points: list[Point] = []
    left_out: list[str] = []
    for score in scores:
        usd, recall, interval = score.usd_per_review, score.recall, score.recall_interval
        if usd is None or recall is None or interval is None:
            left_out.append(score.label)
            continue
        points.append(Point(score.label, usd, recall, interval.low, interval.high))
    return tuple(points), tuple(left_out)


def check_chart(path: str) -> None:
    """Refuse a chart that could not be written, before any model is paid for."""
    target = Path(path)
    if target.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"--chart {path}: name a .svg or .png file")
    if not target.parent.is_dir():
        raise ConfigError(f"--chart {path}: the folder {target.parent} does not exist")
    _matplotlib()


def write_chart(scores: Sequence[ModelScore], path: str | Path, set_name: str) -> tuple[Point, ...]:
    """Draw the chart of ``scores`` to ``path`` (SVG or PNG by its extension); return the points drawn."""
    matplotlib = _matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter, PercentFormatter

    points, left_out = chart_points(scores)
    # Text stays text in an SVG (searchable, and readable by a test); a fixed salt keeps ids stable.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "reviewbot-eval"}):
        figure = Figure(figsize=(7, 4.5), layout="constrained")
        axes = figure.add_subplot()
        for index, point in enumerate(points):
            bar = axes.errorbar(
                [point.usd_per_review],
                [point.recall],
                yerr=[[point.recall - point.low], [point.high - point.recall]],
                fmt="none",
                ecolor=f"C{index % 10}",
                capsize=4,
            )
            bar.lines[2][0].set_gid(f"interval-{index}")  # the vertical bar; its caps are separate lines
            axes.plot([point.usd_per_review], [point.recall], "o", color=f"C{index % 10}", gid=f"point-{index}")
            axes.annotate(
                _literal(point.label), (point.usd_per_review, point.recall), xytext=(6, 6), textcoords="offset points"
            )
        costs = [point.usd_per_review for point in points]
        # Prices of models often differ a hundredfold: a log scale keeps the cheap ones apart.
        if costs and min(costs) > 0 and max(costs) >= 10 * min(costs):
            axes.set_xscale("log")
            axes.xaxis.set_minor_formatter(NullFormatter())
        axes.xaxis.set_major_formatter(FuncFormatter(lambda usd, _: f"{usd:g}"))
        axes.margins(x=0.2)  # room for the labels of the points at the ends
        axes.set_ylim(0, 1.05)
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        axes.set_xlabel("USD per review")
        axes.set_ylabel("recall (95% CI)")
        axes.set_title(_literal(f"reviewbot eval: {Path(set_name).name or set_name}"))
        axes.grid(visible=True, alpha=0.3)
        if left_out:
            figure.supxlabel(
                _literal("not shown (cost unknown or no labelled bug): " + ", ".join(left_out)), fontsize=8
            )
        try:
            figure.savefig(path, format=Path(path).suffix.lower().lstrip("."))
        except OSError as exc:
            raise ConfigError(f"--chart {path} could not be written: {exc.strerror}") from None
    return points


def _matplotlib() -> ModuleType:
    """matplotlib on the Agg backend, or a ConfigError saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(EXTRA_MISSING) from None
    matplotlib.use("Agg")
    return matplotlib


def _literal(text: str) -> str:
    """``text`` shown as it is: matplotlib reads a pair of ``$`` as mathematics."""
    return text.replace("$", r"\$")
