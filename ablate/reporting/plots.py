"""The report's figures (PNG): Pareto front, optimisation history, parallel coordinates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ablate.tracking.names import FLOP_CONVENTION

DPI = 100


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def prepare() -> None:
    """Import matplotlib and pyplot (the Agg backend) and draw a small throwaway figure with
    what the report's figures use (scatter, lines, labels, legend, colour bar), so the first
    real figure does not pay for loading fonts and the renderer."""
    import io

    from matplotlib.collections import LineCollection

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.scatter([0, 1], [0, 1], s=4, label="a")
    ax.step([0, 1], [0, 1], where="post")
    lines = LineCollection([[(0, 0), (1, 1)]], cmap="viridis")
    lines.set_array(np.array([0.5]))
    ax.add_collection(lines)
    ax.annotate("0", (0, 0), fontsize=7)
    ax.set_xlabel("x", fontsize=8)
    ax.legend(fontsize=8)
    fig.colorbar(lines, ax=ax, label="y")
    _save(plt, fig, io.BytesIO())  # type: ignore[arg-type]


def _save(plt: Any, fig: Any, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _label(metric: str) -> str:
    return f"GFLOPs ({FLOP_CONVENTION})" if metric == "gflops" else metric


def pareto_plot(configs: pd.DataFrame, front: pd.Series, axes: list[tuple[str, str]],
                path: Path) -> Path:
    """Every configuration scattered on the two Pareto axes (second on x, first on y), the
    non-dominated ones highlighted, joined and labelled."""
    plt = _pyplot()
    (y_metric, _), (x_metric, _) = axes
    x = configs["mean." + x_metric].astype(float)
    y = configs["mean." + y_metric].astype(float)
    on = front.reindex(configs.index).fillna(False).astype(bool)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.scatter(x[~on], y[~on], s=14, color="0.6", alpha=0.7, label="configurations")
    order = x[on].sort_values().index
    ax.plot(x[order], y[order], "-o", color="tab:red", markersize=6, label="Pareto front")
    for label in order[:15]:
        ax.annotate(str(label), (x[label], y[label]), textcoords="offset points",
                    xytext=(4, 4), fontsize=7)
    ax.set_xlabel(_label(x_metric), fontsize=8)
    ax.set_ylabel(_label(y_metric))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def history_plot(history: pd.DataFrame, objective: str, path: Path) -> Path:
    """Final objective per trial in trial order, with the best so far."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.scatter(history["trial"], history["value"], s=10, color="tab:blue", label=objective)
    ax.step(history["trial"], history["best"], where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def _axis(values: list[Any], distribution: Any) -> tuple[np.ndarray, list[str]]:
    """Values of one parameter on [0, 1] (log scale for log floats, categories evenly spaced)
    and the tick labels of the axis ends (or of every category)."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        choices = list(distribution.choices)
        span = max(len(choices) - 1, 1)
        return np.array([choices.index(v) / span for v in values]), [str(c) for c in choices]
    numbers = np.asarray(values, dtype=float)
    low, high = float(distribution.low), float(distribution.high)
    if getattr(distribution, "log", False):
        numbers, low, high = np.log(numbers), np.log(low), np.log(high)
    scaled = (numbers - low) / (high - low) if high > low else np.full(len(numbers), 0.5)
    return scaled, [f"{distribution.low:.3g}", f"{distribution.high:.3g}"]


def parallel_plot(rebuilt: Any, objective: str, path: Path) -> Path:
    """Parallel coordinates of the rebuilt study: the objective and each searched value on its
    own vertical axis, one line per configuration coloured by the objective (best on top)."""
    plt = _pyplot()
    from matplotlib.collections import LineCollection

    trials = rebuilt.get_trials(deepcopy=False)
    names = sorted(trials[0].distributions)
    values = np.array([t.value for t in trials], dtype=float)
    span = values.max() - values.min()
    columns = [(values - values.min()) / span if span > 0 else np.full(len(values), 0.5)]
    ticks = [[f"{values.min():.3g}", f"{values.max():.3g}"]]
    for name in names:
        scaled, labels = _axis([t.params.get(name) for t in trials],
                               trials[0].distributions[name])
        columns.append(scaled)
        ticks.append(labels)
    grid = np.column_stack(columns)
    order = np.argsort(values if rebuilt.direction.name == "MAXIMIZE" else -values)
    xs = np.arange(grid.shape[1])
    lines = [np.column_stack([xs, grid[i]]) for i in order]
    fig, ax = plt.subplots(figsize=(max(6.4, 1.2 * len(xs) + 1), 4.4))
    collection = LineCollection(lines, cmap="viridis", linewidths=0.8, alpha=0.6)
    collection.set_array(values[order])
    ax.add_collection(collection)
    for x, labels in zip(xs, ticks, strict=True):
        ax.axvline(x, color="0.3", linewidth=0.8)
        positions = np.linspace(0, 1, len(labels)) if len(labels) > 2 else [0, 1]
        for y, label in zip(positions, labels, strict=False):
            ax.annotate(label, (x, y), xytext=(3, 0), textcoords="offset points", fontsize=7,
                        va="center")
    ax.set_xticks(xs, [objective, *names], rotation=20, ha="right", fontsize=8)
    ax.set_xlim(-0.2, xs[-1] + 0.6)
    ax.set_ylim(-0.05, 1.05)
    ax.set_yticks([])
    fig.colorbar(collection, ax=ax, label=objective)
    return _save(plt, fig, path)
