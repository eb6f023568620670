"""Self-play on symmetric zero-sum matrix games, run with the damping functions that train agents.

A game is an antisymmetric payoff matrix A (A = −Aᵀ, shape (n, n)): a player choosing action i
against a mixed strategy π wins (Aπ)_i. One policy π = softmax(z) plays itself. Its
exploitability is

    expl(π) = max_i (Aπ)_i − πᵀAπ   (πᵀAπ = 0 here; expl ≥ 0, and 0 iff π is a Nash equilibrium)

Update (mirror descent with the negative-entropy mirror map, i.e. a natural-gradient step on the
logits), t = 0, 1, …, with :func:`metamon.amago.damping.masked_reverse_kl` and autograd::

    q_t     = stopgrad(A π_t)                                  the payoff of each action
    J(z)    = ⟨π_z, q_t⟩ − β_t KL(π_z ‖ π_ref)
    z_{t+1} = z_t + lr · ∇_z J / π_t      (∇_z J / π = ∇_π J − ⟨π, ∇_π J⟩: the MD direction)

Methods (:data:`METHODS`, one step size lr = 0.25 for all):

* ``hedge``: β = 0 (multiplicative weights); the last iterate cycles, only the average converges.
* ``damped``: β = 0.2 toward a reference replaced by the current policy every 50 updates
  (:class:`~metamon.amago.damping.RefreshSchedule`, as R-NaD does): a proximal-point method whose
  last iterate converges to a Nash equilibrium. ``damped_ema``: the same, refreshed from an EMA
  (decay 0.9) of the logits.
* ``seeds_damped``: the seeds' ``vanilla_selfplay_damped.gin`` — a fixed reference (the initial
  policy), β(t) = min(0.05 (1 + t/10⁶)^(−0.5), 0.5), a constant step, no entropy term (the seeds
  computed η but never applied it). β ≈ 0.05 (it barely decays within 10⁴ updates) is too weak
  a pull to stop the cycling on biased RPS, and where it does settle (RPS, the random game) it
  settles at a point biased toward the initial policy.
* ``fixed_ref``: β = 0.2 toward the fixed initial policy: converges, but to the regularised
  equilibrium, not to a Nash equilibrium — the refresh is what removes the bias.

Every method starts from the same logits z_0 ~ N(0, 1) (``--seed``). All (game, method) rows
run as one batch: a game with fewer actions is padded with illegal actions, which the masked
damping functions ignore. Usage::

    python -m metamon.selfplay.matrix_games --game biased_rps rps random \\
        --method hedge damped seeds_damped --iterations 10000 --plot expl.png
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from metamon.amago.damping import (
    PowerLawSchedule,
    RefreshSchedule,
    ema_update,
    kl_coef_schedule,
    masked_log_softmax,
    masked_reverse_kl,
)
from metamon.errors import UnknownNameError
from metamon.files import atomic_path

__all__ = [
    "GAMES",
    "METHODS",
    "Method",
    "Trace",
    "make_game",
    "exploitability",
    "self_play",
    "format_table",
    "plot_traces",
    "main",
]

DTYPE = torch.float64
_TINY = 1e-300  # floor of π in the MD division; an action whose π underflows to 0 stops moving


# ------------------------------------------------------------------------------------ games


def biased_rps() -> torch.Tensor:
    """Biased rock-paper-scissors, rows [0,−1,3], [1,0,−3], [−3,3,0]; Nash (3/7, 3/7, 1/7)."""
    return torch.tensor([[0.0, -1.0, 3.0], [1.0, 0.0, -3.0], [-3.0, 3.0, 0.0]], dtype=DTYPE)


def rps() -> torch.Tensor:
    """Rock-paper-scissors; Nash (1/3, 1/3, 1/3)."""
    return torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], dtype=DTYPE)


def random_game(size: int = 10, seed: int = 0) -> torch.Tensor:
    """A = (M − Mᵀ)/√2 with M_ij ~ N(0, 1) i.i.d. (seeded): a random symmetric zero-sum game."""
    m = torch.randn(size, size, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)
    return (m - m.T) / math.sqrt(2.0)


GAMES = {"rps": rps, "biased_rps": biased_rps, "random": random_game}


def make_game(name: str, game_seed: int = 0) -> torch.Tensor:
    """The payoff matrix (n, n) of ``name`` in :data:`GAMES` (``game_seed`` only for "random")."""
    if name not in GAMES:
        raise UnknownNameError("matrix game", name, GAMES)
    return random_game(seed=game_seed) if name == "random" else GAMES[name]()


def exploitability(payoff: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
    """max_i (Aπ)_i − πᵀAπ. payoff (..., n, n), policy (..., n) -> (...).

    Padding (zero rows and columns, π = 0 there) is harmless for antisymmetric A: πᵀAπ = 0, so
    some real action has (Aπ)_i ≥ 0 and a padded action's value 0 is never above the max.
    """
    values = (payoff @ policy.unsqueeze(-1)).squeeze(-1)
    return values.amax(dim=-1) - (policy * values).sum(dim=-1)


# ---------------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    """One self-play update rule (see the module docstring for the update).

    step_size: the constant lr. kl_coef: β(t) (init 0: no KL term).
    refresh: when the reference is replaced (None: it stays the initial policy).
    """

    name: str
    description: str
    step_size: float
    kl_coef: PowerLawSchedule
    refresh: Optional[RefreshSchedule] = None


_NO_KL = PowerLawSchedule(init=0.0, steps=1.0, alpha=0.0)
STEP_SIZE = 0.25  # one step size for every method, so that they differ only in their damping
DAMPED_BETA = 0.2
REFRESH_EVERY = 50

METHODS = {
    m.name: m
    for m in [
        Method("hedge", "no regulariser (multiplicative weights)", STEP_SIZE, _NO_KL),
        Method(
            "damped",
            f"β = {DAMPED_BETA} toward a reference replaced by the current policy every {REFRESH_EVERY} updates",
            STEP_SIZE,
            kl_coef_schedule(beta0=DAMPED_BETA, steps=1.0, alpha=0.0, beta_max=DAMPED_BETA),
            refresh=RefreshSchedule(every_k_updates=REFRESH_EVERY, mode="current"),
        ),
        Method(
            "damped_ema",
            f"β = {DAMPED_BETA} toward a reference replaced by the EMA (decay 0.9) of the logits "
            f"every {REFRESH_EVERY} updates",
            STEP_SIZE,
            kl_coef_schedule(beta0=DAMPED_BETA, steps=1.0, alpha=0.0, beta_max=DAMPED_BETA),
            refresh=RefreshSchedule(every_k_updates=REFRESH_EVERY, mode="ema", ema_decay=0.9),
        ),
        Method(
            "seeds_damped",
            "the seeds' vanilla_selfplay_damped.gin: fixed reference (the initial policy), "
            "β = min(0.05 (1 + t/1e6)^-0.5, 0.5), no entropy term, constant step",
            STEP_SIZE,
            kl_coef_schedule(beta0=0.05, steps=1e6, alpha=0.5, beta_max=0.5),
        ),
        Method(
            "fixed_ref",
            f"β = {DAMPED_BETA} toward the fixed initial policy, never refreshed "
            "(converges, to a regularised equilibrium that is not a Nash equilibrium)",
            STEP_SIZE,
            kl_coef_schedule(beta0=DAMPED_BETA, steps=1.0, alpha=0.0, beta_max=DAMPED_BETA),
        ),
    ]
}


# ------------------------------------------------------------------------------------- runs


@dataclass
class Trace:
    """Exploitability of one (game, method) run after ``iterations[k]`` updates: ``last`` of the
    current policy π_t, ``average`` of the mean of the policies that played, (1/t) Σ_{s<t} π_s
    (at t = 0: π_0). ``policy``: the final π (n,)."""

    game: str
    method: str
    iterations: list
    last: list
    average: list
    policy: list


def _log_checkpoints(iterations: int, per_decade: int = 20) -> list:
    """0, 1, and ``per_decade`` log-spaced integers per decade up to ``iterations`` (included)."""
    points = {0, iterations}
    k = 0
    while True:
        t = int(round(10 ** (k / per_decade)))
        if t > iterations:
            break
        points.add(t)
        k += 1
    return sorted(points)


def self_play(
    games: Sequence[tuple[str, torch.Tensor]],
    methods: Sequence[Method],
    iterations: int,
    seed: int = 0,
    checkpoints: Optional[Sequence[int]] = None,
) -> list[Trace]:
    """Run every method on every game for ``iterations`` updates, all rows in one batch.

    games: (name, payoff (n, n)) pairs; methods: :class:`Method` s. The initial logits of a game
    are N(0, 1) draws from ``seed`` (identical for every method). ``checkpoints``: the iteration
    counts to record (default: log-spaced, always including 0 and ``iterations``).
    Returns one :class:`Trace` per (game, method), games outer.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    rows = [(g, m) for g in games for m in methods]
    n_max = max(payoff.shape[0] for _, payoff in games)
    R = len(rows)
    payoff = torch.zeros(R, n_max, n_max, dtype=DTYPE)
    legal = torch.zeros(R, n_max, dtype=torch.bool)
    z = torch.zeros(R, n_max, dtype=DTYPE)
    for r, ((_, a), _) in enumerate(rows):
        n = a.shape[0]
        payoff[r, :n, :n] = a
        legal[r, :n] = True
        z[r, :n] = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)
    lr = torch.tensor([m.step_size for _, m in rows], dtype=DTYPE).unsqueeze(-1)
    refresh_from_ema = torch.tensor(
        [m.refresh is not None and m.refresh.mode == "ema" for _, m in rows]
    ).unsqueeze(-1)
    ema_decay = torch.tensor(
        [m.refresh.ema_decay if m.refresh is not None else 0.0 for _, m in rows], dtype=DTYPE
    ).unsqueeze(-1)

    ref = z.clone()  # reference logits: the initial policy until a refresh
    ema = z.clone()  # EMA copy of the logits, the source of mode="ema" refreshes
    policy_sum = torch.zeros(R, n_max, dtype=DTYPE)
    record_at = set(_log_checkpoints(iterations) if checkpoints is None else checkpoints)
    record_at = {t for t in record_at if 0 <= t <= iterations} | {iterations}
    traces = [Trace(g[0], m.name, [], [], [], []) for g, m in rows]

    for t in range(iterations + 1):
        z_var = z.detach().requires_grad_(True)
        pi_var = masked_log_softmax(z_var, legal).exp() * legal          # π_t (R, n), 0 on padding
        pi = pi_var.detach()
        if t in record_at:
            average = pi if t == 0 else policy_sum / t
            last_e, avg_e = exploitability(payoff, pi).tolist(), exploitability(payoff, average).tolist()
            for r, trace in enumerate(traces):
                trace.iterations.append(t)
                trace.last.append(last_e[r])
                trace.average.append(avg_e[r])
        if t == iterations:
            break
        policy_sum += pi

        # J = <π, stopgrad(Aπ)> − β_t KL(π ‖ π_ref), one row per (game, method)
        beta = torch.tensor([m.kl_coef(t) for _, m in rows], dtype=DTYPE)
        q = (payoff @ pi.unsqueeze(-1)).squeeze(-1)
        objective = (pi_var * q).sum(-1) - beta * masked_reverse_kl(z_var, ref, legal)
        (grad,) = torch.autograd.grad(objective.sum(), z_var)

        # mirror-descent step: z += lr · ∇_z J / π, then shift so that the best legal logit is 0
        z = z + lr * grad / pi.clamp_min(_TINY)
        z = z - z.masked_fill(~legal, -math.inf).amax(-1, keepdim=True)
        ema = ema_update(ema, z, ema_decay)
        due = [m.refresh is not None and m.refresh.due(t + 1) for _, m in rows]
        if any(due):
            source = torch.where(refresh_from_ema, ema, z)
            ref = torch.where(torch.tensor(due).unsqueeze(-1), source, ref)

    final = masked_log_softmax(z, legal).exp() * legal
    for r, trace in enumerate(traces):
        trace.policy = final[r, : int(legal[r].sum())].tolist()
    return traces


# ---------------------------------------------------------------------------------- reports


def _decades(iterations: int) -> list:
    """1, 10, 100, … below ``iterations``, then ``iterations``."""
    points, t = [], 1
    while t < iterations:
        points.append(t)
        t *= 10
    return points + [iterations]


def format_table(traces: Sequence[Trace], at: Optional[Sequence[int]] = None) -> str:
    """A text table: one block per game, two rows per method (last iterate, average), one column
    per iteration count in ``at`` (default 1, 10, …, the last one; each must have been recorded)."""
    lines = []
    for game in dict.fromkeys(t.game for t in traces):
        rows = [t for t in traces if t.game == game]
        points = list(at) if at is not None else _decades(rows[0].iterations[-1])
        lines.append(f"game {game}: exploitability max_i (Aπ)_i − πᵀAπ after t updates")
        lines.append(f"{'method':<14} {'policy':<8}" + "".join(f"{'t=' + str(p):>11}" for p in points))
        for trace in rows:
            index = {t: k for k, t in enumerate(trace.iterations)}
            for label, values in (("last", trace.last), ("average", trace.average)):
                cells = "".join(f"{values[index[p]]:>11.3e}" for p in points)
                lines.append(f"{trace.method:<14} {label:<8}{cells}")
        lines.append("")
    return "\n".join(lines)


def plot_traces(traces: Sequence[Trace], path: str, floor: float = 1e-16) -> None:
    """Write a PNG: one panel per game, exploitability (log scale, values below ``floor`` drawn at
    ``floor``) against the iteration (log scale, t ≥ 1); solid = last iterate, dashed = average."""
    games = list(dict.fromkeys(t.game for t in traces))
    fig = Figure(figsize=(5.5 * len(games), 4.2), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(games), squeeze=False)[0]
    for ax, game in zip(axes, games):
        for k, trace in enumerate(t for t in traces if t.game == game):
            color = f"C{k}"
            points = [(t, a, b) for t, a, b in zip(trace.iterations, trace.last, trace.average) if t >= 1]
            xs = [p[0] for p in points]
            ax.plot(xs, [max(p[1], floor) for p in points], color=color, label=f"{trace.method} (last)")
            ax.plot(xs, [max(p[2], floor) for p in points], color=color, linestyle="--", label=f"{trace.method} (avg)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("iteration t")
        ax.set_ylabel("exploitability")
        ax.set_title(game)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def main(argv: Optional[Sequence[str]] = None) -> list[Trace]:
    parser = argparse.ArgumentParser(
        prog="python -m metamon.selfplay.matrix_games",
        description="Self-play mirror descent on symmetric zero-sum matrix games with the damping "
        "functions of metamon.amago.damping; prints last-iterate and average exploitability.",
    )
    parser.add_argument("--game", nargs="+", choices=sorted(GAMES), default=["biased_rps"])
    parser.add_argument("--method", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial logits z_0 ~ N(0, 1)")
    parser.add_argument("--game_seed", type=int, default=0, help="seed of the random game's payoffs")
    parser.add_argument("--plot", default=None, help="write a PNG of exploitability vs iteration here")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error("--iterations must be >= 1")
    games = [(name, make_game(name, args.game_seed)) for name in args.game]
    methods = [METHODS[name] for name in args.method]
    traces = self_play(games, methods, args.iterations, seed=args.seed)
    for method in methods:
        print(f"{method.name}: {method.description}")
    print(f"\nseed {args.seed}, {args.iterations} iterations\n")
    print(format_table(traces))
    if args.plot:
        plot_traces(traces, args.plot)
        print(f"plot written to {args.plot}")
    return traces


if __name__ == "__main__":
    main(sys.argv[1:])
