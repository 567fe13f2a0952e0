"""The report's plots, each returned as PNG bytes.

Figures are drawn on an explicit Agg canvas instead of through `pyplot`: that works headless (no display, no
backend guessing) and leaves the backend of a notebook or any other caller untouched.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, LogLocator, NullLocator, StrMethodFormatter

KEPT = "#2f6db5"
INPUT = "#c9d3df"
DROPPED = "#c0504d"
WIDTH = 7.5
DPI = 110


def _figure(height: float) -> Figure:
    figure = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def funnel(stages: list[str], rows_in: list[int], rows_out: list[int]) -> bytes:
    """Rows in (pale) behind rows out (dark) for each stage, first stage on top."""
    figure = _figure(0.9 + 0.45 * len(stages))
    axes = figure.add_subplot()
    positions = np.arange(len(stages))[::-1]
    axes.barh(positions, rows_in, color=INPUT, label="rows in")
    axes.barh(positions, rows_out, height=0.5, color=KEPT, label="rows out")
    widest = max([*rows_in, *rows_out, 1])
    for position, count_in, count_out in zip(positions, rows_in, rows_out):
        kept = f" ({100 * count_out / count_in:.1f}% kept)" if count_in else ""
        axes.text(max(count_in, count_out) + widest * 0.01, position, f"{count_out:,} of {count_in:,}{kept}",
                  va="center", fontsize=9)
    axes.set_yticks(positions, stages)
    axes.set_xlim(0, widest * 1.45)
    axes.set_xlabel("rows")
    figure.legend(loc="outside lower center", ncols=2, fontsize=9, frameon=False)
    axes.set_title("Rows through the stages")
    return _png(figure)


def drop_bars(stage: str, reasons: list[str], counts: list[int]) -> bytes:
    """One horizontal bar per drop reason, the most frequent on top."""
    figure = _figure(0.9 + 0.35 * len(reasons))
    axes = figure.add_subplot()
    positions = np.arange(len(reasons))[::-1]
    axes.barh(positions, counts, color=DROPPED)
    widest = max([*counts, 1])
    for position, count in zip(positions, counts):
        axes.text(count + widest * 0.01, position, f"{count:,}", va="center", fontsize=9)
    axes.set_yticks(positions, reasons)
    axes.set_xlim(0, widest * 1.2)
    axes.set_xlabel("rows dropped")
    axes.set_title(f"{stage}: rows dropped, by reason")
    return _png(figure)


def _log_bins(values: np.ndarray, count: int = 50) -> np.ndarray:
    low = max(1, int(values.min()))
    high = max(low + 1, int(values.max()))
    return np.unique(np.geomspace(low, high + 1, count))


def length_histogram(stage: str, kept: np.ndarray, dropped: np.ndarray) -> bytes:
    """Document lengths of kept rows (filled) and dropped rows (outline), on a log scale."""
    figure = _figure(3.2)
    axes = figure.add_subplot()
    everything = np.concatenate([kept, dropped])
    bins = _log_bins(np.maximum(everything, 1))
    axes.hist(np.maximum(kept, 1), bins=bins, color=KEPT, alpha=0.85, label=f"kept ({len(kept):,} rows)")
    if len(dropped):
        axes.hist(np.maximum(dropped, 1), bins=bins, histtype="step", linewidth=1.5, color=DROPPED,
                  label=f"dropped ({len(dropped):,} rows)")
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(EngFormatter(unit="B"))
    axes.xaxis.set_minor_locator(NullLocator())  # decades are enough, and each tick costs layout time
    axes.set_xlabel("document length (bytes of UTF-8 text, log scale)")
    axes.set_ylabel("documents")
    axes.legend(fontsize=9, frameon=False)
    axes.set_title(f"{stage}: document lengths")
    return _png(figure)


def cluster_histogram(stage: str, sizes: np.ndarray) -> bytes:
    """How many clusters have each size, one stem per size on log-log axes (singletons dwarf the rest)."""
    figure = _figure(3.2)
    axes = figure.add_subplot()
    values, counts = np.unique(sizes, return_counts=True)
    axes.vlines(values, 0.8, counts, color=KEPT, linewidth=2)
    axes.plot(values, counts, "o", color=KEPT, markersize=4)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(0.8, values.max() * 1.25)
    axes.set_ylim(0.8, counts.max() * 1.6)
    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        axis.set_minor_locator(NullLocator())
    axes.set_xlabel("cluster size (rows, log scale)")
    axes.set_ylabel("clusters (log scale)")
    axes.set_title(f"{stage}: near-duplicate cluster sizes")
    return _png(figure)


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < window or window < 2:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def loss_curves(stage: str, steps: list[int], losses: list[float], val_steps: list[int], val_losses: list[float],
                entropy: float | None) -> bytes:
    """Training loss per step with its moving average, validation loss, and the unigram-entropy bar."""
    figure = _figure(3.4)
    axes = figure.add_subplot()
    step_array, loss_array = np.asarray(steps), np.asarray(losses, dtype=float)
    axes.plot(step_array, loss_array, color=INPUT, linewidth=1, label="training loss")
    window = max(1, len(loss_array) // 25)
    smooth = _moving_average(loss_array, window)
    axes.plot(step_array[len(step_array) - len(smooth):], smooth, color=KEPT, linewidth=1.8,
              label=f"training loss, mean of {window} steps" if window > 1 else None)
    if val_steps:
        axes.plot(val_steps, val_losses, "o-", color=DROPPED, markersize=4, linewidth=1.2, label="validation loss")
    if entropy is not None:
        axes.axhline(entropy, color="#555555", linestyle="--", linewidth=1, label="validation unigram entropy")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss (nats per token)")
    axes.legend(fontsize=9, frameon=False)
    axes.set_title(f"{stage}: loss")
    return _png(figure)


def eval_scores(stage: str, benchmarks: list[str], pass_at_1: list[float], losses: list[float | None]) -> bytes:
    """pass@1 per benchmark (left) and the canonical solutions' loss (right, where measured)."""
    figure = _figure(0.9 + 0.4 * len(benchmarks))
    left, right = figure.subplots(1, 2, sharey=True)
    positions = np.arange(len(benchmarks))[::-1]
    left.barh(positions, [100 * value for value in pass_at_1], color=KEPT)
    for position, value in zip(positions, pass_at_1):
        left.text(100 * value + 1, position, f"{100 * value:.1f}%", va="center", fontsize=9)
    left.set_xlim(0, 110)
    left.set_xlabel("pass@1 (%)")
    left.set_yticks(positions, benchmarks)
    measured = [value if value is not None else 0.0 for value in losses]
    right.barh(positions, measured, color=DROPPED)
    for position, value in zip(positions, losses):
        right.text((value or 0) * 1.02, position, "n/a" if value is None else f"{value:.2f}", va="center",
                   fontsize=9)
    right.set_xlim(0, max([*measured, 1.0]) * 1.25)
    right.set_xlabel("canonical-solution loss (nats/token)")
    figure.suptitle(f"{stage}: scores")
    return _png(figure)


def similar_by_tau(stage: str, similar: dict[str, list[int]], taus: list[str]) -> bytes:
    """Similar problems at each tau (the paper's table 3), one line per benchmark."""
    figure = _figure(2.6)
    axes = figure.add_subplot()
    for bench, counts in similar.items():
        axes.plot([float(tau) for tau in taus], counts, marker="o", label=bench)
        for tau, count in zip(taus, counts):
            axes.text(float(tau), count, f"{count:,}", ha="center", va="bottom", fontsize=8)
    axes.invert_xaxis()
    axes.set_xlabel("AST match rate tau")
    axes.set_ylabel("similar problems")
    axes.legend()
    axes.set_title(f"{stage}: problems with a similar row")
    return _png(figure)


def count_bars(title: str, labels: list[str], counts: list[int], xlabel: str, ylabel: str,
               colors: list[str] | None = None) -> bytes:
    """One vertical bar per label with its count written on top."""
    figure = _figure(2.6)
    axes = figure.add_subplot()
    positions = np.arange(len(labels))
    axes.bar(positions, counts, color=colors or KEPT)
    for position, value in zip(positions, counts):
        axes.text(position, value, f"{value:,}", ha="center", va="bottom", fontsize=9)
    axes.set_xticks(positions, labels)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_ylim(0, max([*counts, 1]) * 1.18)
    axes.set_title(title)
    return _png(figure)


def score_bars(stage: str, scores: list[str], counts: list[int], unscored: int) -> bytes:
    """How many rows got each score (0-5), and how many none."""
    return count_bars(f"{stage}: the judge's scores", scores + (["none"] if unscored else []),
                      counts + ([unscored] if unscored else []), "educational value (0-5)", "rows",
                      [KEPT] * len(scores) + [DROPPED] * bool(unscored))


def precision_recall(stage: str, recall: list[float], precision: list[float], kept: list[float],
                     thresholds: list[float], cutoff: float) -> bytes:
    """The held-out precision-recall curve of a classifier (left) and the share of rows kept per threshold
    (right), the operating point marked."""
    figure = _figure(3.0)
    left, right = figure.subplots(1, 2)
    left.plot(recall, precision, marker="o", markersize=3, color=KEPT)
    at = min(range(len(thresholds)), key=lambda index: abs(thresholds[index] - cutoff)) if thresholds else None
    if at is not None:
        left.plot([recall[at]], [precision[at]], marker="o", markersize=8, color=DROPPED,
                  label=f"threshold {thresholds[at]:g}")
        left.legend(fontsize=8, frameon=False)
    left.set_xlim(0, 1.02)
    left.set_ylim(0, 1.02)
    left.set_xlabel("recall")
    left.set_ylabel("precision")
    right.plot(thresholds, [100 * share for share in kept], color=KEPT)
    right.set_xlabel("score threshold")
    right.set_ylabel("held-out rows kept (%)")
    right.set_ylim(0, 102)
    figure.suptitle(f"{stage}: the classifier on its held-out labels")
    return _png(figure)


def score_histogram(stage: str, scores: list[float], column: str) -> bytes:
    """How the classifier's scores spread over the corpus."""
    figure = _figure(2.6)
    axes = figure.add_subplot()
    axes.hist(scores, bins=20, range=(0, 1), color=KEPT)
    axes.set_xlabel(column)
    axes.set_ylabel("rows")
    axes.set_title(f"{stage}: {column} of every row")
    return _png(figure)


Bar = tuple[float, float, float, list[float]]  # mean, interval low and high, each seed's mean (several seeds)


def interval_bars(title: str, benchmarks: list[str], arms: list[str],
                  panels: list[tuple[str, dict[str, dict[str, Bar]]]]) -> bytes:
    """The paper's figure 2.1 layout: per panel (a measure, with its axis label), the benchmarks along the x axis
    and one bar per arm with its interval as an error bar and each seed's mean as a dot; `panels[i][1]` maps
    arm -> benchmark -> bar, and an arm without a bar for a benchmark (not measured) has none there."""
    figure = _figure(1.0 + 2.5 * len(panels))
    colors = [matplotlib.colormaps["tab10"](index % 10) for index in range(len(arms))]
    width = 0.8 / max(len(arms), 1)
    positions = np.arange(len(benchmarks))
    for row, (label, bars) in enumerate(panels):
        axes = figure.add_subplot(len(panels), 1, row + 1)
        for index, (arm, color) in enumerate(zip(arms, colors)):
            found = [(position, bars[arm][bench]) for position, bench in zip(positions, benchmarks)
                     if bench in bars.get(arm, {})]
            if not found:
                continue
            at = np.array([position for position, _ in found]) + (index - (len(arms) - 1) / 2) * width
            means = np.array([bar[0] for _, bar in found])
            errors = np.array([[bar[0] - bar[1] for _, bar in found], [bar[2] - bar[0] for _, bar in found]])
            axes.bar(at, means, width * 0.92, color=color, label=arm if row == 0 else None)
            axes.errorbar(at, means, yerr=np.maximum(errors, 0), fmt="none", ecolor="#222222", capsize=3,
                          linewidth=1)
            for x, (_, bar) in zip(at, found):
                if len(bar[3]) > 1:
                    axes.plot([x] * len(bar[3]), bar[3], "o", color="#222222", markersize=2.5)
        if not any(bars.get(arm) for arm in arms):
            axes.text(0.5, 0.5, "not measured by these evaluations", transform=axes.transAxes, ha="center",
                      va="center", color="#59636e")
            axes.set_yticks([])
        axes.set_xlim(-0.5, len(benchmarks) - 0.5)
        axes.set_xticks(positions, benchmarks)
        axes.set_ylabel(label)
        axes.set_ylim(bottom=0)
    figure.legend(loc="outside lower center", ncols=min(len(arms), 4), fontsize=9, frameon=False)
    figure.suptitle(title)
    return _png(figure)
