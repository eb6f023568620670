"""Pictures of a PSRO run (matplotlib ``Figure`` on the Agg canvas: no display, no pyplot state).

* :func:`plot_payoff_heatmap` -- ``M[i, j]`` (row beats column, draws as ½) coloured, each
  cell with the win rate, ``wins+½draws / n`` and the 95 % Wilson interval as text.
* :func:`plot_sigma` -- σ over iterations as stacked bars (one bar per logged iteration, plus
  the final σ over the whole population).
* :func:`plot_exploitability` -- empirical exploitability with its bootstrap interval, and each
  best response's win rate against σ with its Wilson interval, per iteration.
* :func:`write_psro_plots` -- all three from a PSRO ``save_dir`` (``payoffs.json`` and
  ``psro_log.json``), written atomically as ``payoff_heatmap.png``, ``sigma.png`` and
  ``exploitability.png``.

The log arguments are the ``psro_log.json`` object (:mod:`metamon.nash.psro`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Union

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from metamon.files import atomic_path
from metamon.nash.payoff import PayoffCounts, PayoffTable
from metamon.nash.psro import LOG_FILE, PAYOFF_FILE

__all__ = ["plot_payoff_heatmap", "plot_sigma", "plot_exploitability", "write_psro_plots", "PLOT_FILES"]

PLOT_FILES = ("payoff_heatmap.png", "sigma.png", "exploitability.png")
PathLike = Union[str, os.PathLike]


def _figure(width: float, height: float):
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig: Figure, path: PathLike) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return Path(path)


def plot_payoff_heatmap(counts: PayoffCounts, path: PathLike, title: str = "P(row beats column)") -> Path:
    """Heat-map of the win-rate matrix of ``counts`` (pairs without battles are grey and say
    "no battles"), with score/n and the Wilson interval in every off-diagonal cell."""
    k = len(counts.names)
    n = counts.n
    score = counts.wins + 0.5 * counts.draws
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(n > 0, score / np.maximum(n, 1), np.nan)
    np.fill_diagonal(m, 0.5)
    low, high = np.full((k, k), np.nan), np.full((k, k), np.nan)
    if not counts.missing_pairs():
        low, high = counts.wilson_intervals()
    size = max(4.0, 1.3 * k + 2)
    fig, ax = _figure(size, size * 0.85)
    image = ax.imshow(np.ma.masked_invalid(m), cmap="RdBu", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    for i in range(k):
        for j in range(k):
            if i == j:
                text = "½"
            elif n[i, j] == 0:
                text = "no\nbattles"
            else:
                text = f"{m[i, j]:.2f}\n{score[i, j]:g}/{n[i, j]}"
                if np.isfinite(low[i, j]):
                    text += f"\n[{low[i, j]:.2f}, {high[i, j]:.2f}]"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if np.isfinite(m[i, j]) and abs(m[i, j] - 0.5) > 0.3 else "black")
    ax.set_xticks(range(k), counts.names, rotation=45, ha="right")
    ax.set_yticks(range(k), counts.names)
    ax.set_xlabel("column (opponent)")
    ax.set_ylabel("row (player)")
    ax.set_title(title)
    return _save(fig, path)


def _solutions(log: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Every logged meta-solution, labelled: ``it 0``, ``it 1``, ... and ``final``."""
    out = [dict(it, label=f"it {it['iteration']}") for it in log.get("iterations", [])]
    if log.get("final"):
        out.append(dict(log["final"], label="final"))
    return out


def plot_sigma(log: Mapping[str, Any], path: PathLike) -> Path:
    """σ of each iteration (and the final one) as stacked bars over the members."""
    solutions = _solutions(log)
    members: List[str] = []
    for s in solutions:
        members += [m for m in s["members"] if m not in members]
    fig, ax = _figure(max(4.0, 0.9 * len(solutions) + 3), 4)
    bottom = np.zeros(len(solutions))
    colors = matplotlib.colormaps["tab20"]
    for c, name in enumerate(members):
        share = np.array([dict(zip(s["members"], s["sigma"])).get(name, 0.0) for s in solutions])
        ax.bar(range(len(solutions)), share, bottom=bottom, label=name, color=colors(c % 20))
        bottom += share
    ax.set_xticks(range(len(solutions)), [s["label"] for s in solutions])
    ax.set_ylim(0, 1)
    ax.set_ylabel("σ (meta-strategy weight)")
    ax.set_title(f"σ over iterations ({log.get('meta_solver', '?')})")
    if members:
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return _save(fig, path)


def _err(rows: np.ndarray) -> np.ndarray:
    """``(2, n)`` error-bar lengths from rows ``(value, low, high)`` (round-off clipped at 0)."""
    return np.maximum(0.0, np.stack([rows[:, 0] - rows[:, 1], rows[:, 2] - rows[:, 0]]))


def plot_exploitability(log: Mapping[str, Any], path: PathLike) -> Path:
    """Exploitability of σ (bootstrap interval) and the best response's win rate against σ
    minus ½ (Wilson interval) per iteration, on one axis: both are "how much better than even
    can something do against σ" -- within the population, and for the new policy."""
    solutions = _solutions(log)
    fig, ax = _figure(max(4.5, 0.9 * len(solutions) + 3), 4)
    x = np.arange(len(solutions))
    if solutions:
        e = np.array([[s["exploitability"][key] for key in ("value", "low", "high")] for s in solutions])
        ax.errorbar(x, e[:, 0], yerr=_err(e), fmt="o-", capsize=4,
                    label="exploitability of σ in the population (bootstrap)")
    its = log.get("iterations", [])
    if its:
        w = np.array([[it["br_win_rate"][key] - 0.5 for key in ("value", "low", "high")] for it in its])
        xi = np.arange(len(its)) + 0.1
        ax.errorbar(xi, w[:, 0], yerr=_err(w), fmt="s--", capsize=4,
                    label="best response's win rate vs σ − ½ (Wilson)")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xticks(x, [s["label"] for s in solutions])
    ax.set_ylabel("win rate above ½")
    ax.set_title("exploitability over iterations (95 % intervals)")
    if solutions:
        ax.legend(fontsize=8)
    return _save(fig, path)


def write_psro_plots(save_dir: PathLike) -> List[Path]:
    """The three plots of the PSRO run in ``save_dir`` (files :data:`PLOT_FILES`)."""
    save_dir = Path(save_dir)
    log = json.loads((save_dir / LOG_FILE).read_text(encoding="utf-8"))
    table = PayoffTable.load(save_dir / PAYOFF_FILE)
    heat, sigma, expl = (save_dir / name for name in PLOT_FILES)
    return [plot_payoff_heatmap(table.counts(), heat), plot_sigma(log, sigma), plot_exploitability(log, expl)]
