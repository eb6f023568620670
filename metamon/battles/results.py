"""Battle outcomes read off a poke-env ``Player`` and their summary.

A run's battles are the entries of ``player.battles`` that were not there before it started:
callers snapshot ``before = set(player.battles)`` and pass it in. Every function here only
reads the player (safe to call from any thread while ``POKE_LOOP`` keeps adding battles).

* :class:`BattleResult` — one battle from the player's side: outcome and last turn.
* :func:`new_finished` — how many of the run's battles have finished.
* :func:`battle_results` — one result per battle of the run, padded to the number asked for.
* :func:`summarize` — counts per outcome, win rate and its 95% Wilson interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from poke_env.player import Player

from metamon.stats import wilson_interval

__all__ = ["OUTCOMES", "BattleResult", "new_finished", "battle_results", "summarize"]

OUTCOMES = ("win", "loss", "tie", "error")


@dataclass(frozen=True)
class BattleResult:
    """One battle seen from the first player: ``outcome`` is "win", "loss", "tie" or "error"
    (unfinished when the run timed out, or never started); ``turns`` the last turn reached."""

    battle_tag: Optional[str]
    outcome: str
    turns: int


def _new_battles(player: Player, before: set) -> list:
    """Battles started since ``before`` (a snapshot: POKE_LOOP keeps adding to the dict)."""
    return [(tag, b) for tag, b in list(player.battles.items()) if tag not in before]


def new_finished(player: Player, before: set) -> int:
    """How many battles started since ``before`` have finished."""
    return sum(1 for _, b in _new_battles(player, before) if b.finished)


def battle_results(player: Player, before: set, n_battles: int) -> List[BattleResult]:
    """One result per battle started since ``before`` ("error" while unfinished), padded with
    ``BattleResult(None, "error", 0)`` up to ``n_battles`` for battles that never started."""
    results = []
    for tag, battle in _new_battles(player, before):
        outcome = "error" if not battle.finished else "win" if battle.won else "loss" if battle.lost else "tie"
        results.append(BattleResult(tag, outcome, battle.turn))
    return results + [BattleResult(None, "error", 0)] * max(0, n_battles - len(results))


def summarize(results: Sequence[BattleResult]) -> Dict[str, float]:
    """Counts per outcome plus ``finished``, ``win_rate`` (wins / finished battles, ties count
    as not won) and its 95% Wilson interval ``ci_low`` / ``ci_high``."""
    counts = {o: sum(r.outcome == o for r in results) for o in OUTCOMES}
    finished = counts["win"] + counts["loss"] + counts["tie"]
    low, high = wilson_interval(counts["win"], finished)
    return {
        **counts,
        "finished": finished,
        "win_rate": counts["win"] / finished if finished else float("nan"),
        "ci_low": low,
        "ci_high": high,
    }
