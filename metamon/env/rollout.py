"""Play whole battles in an env with a simple policy, and summarise them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from metamon.stats import wilson_interval

__all__ = ["EpisodeResult", "random_policy", "play_episodes", "summarize"]

Policy = Callable[[dict, dict], int]


@dataclass
class EpisodeResult:
    result: str  # "win" | "loss" | "tie"
    steps: int
    turns: int
    total_return: float
    valid_actions: int
    invalid_actions: int
    seconds: float
    trajectory_path: str | None = None

    @property
    def won(self) -> bool:
        return self.result == "win"


def random_policy(n_actions: int, legal_only: bool = True, seed: int | None = None) -> Policy:
    """Uniform over ``info["legal_actions"]`` (``legal_only``) or over all ``n_actions``
    (then illegal picks exercise the env's fallback)."""
    rng = np.random.default_rng(seed)

    def policy(obs: dict, info: dict) -> int:
        legal = info.get("legal_actions") or []
        if legal_only and legal:
            return int(rng.choice(legal))
        return int(rng.integers(n_actions))

    return policy


def play_episodes(
    env, policy: Policy, n_battles: int, progress: bool = True, desc: str | None = None
) -> list[EpisodeResult]:
    """Run ``n_battles`` full battles of ``env`` with ``policy(obs, info) -> action``."""
    results = []
    for _ in tqdm(range(n_battles), desc=desc or "battles", disable=not progress, leave=False):
        start = time.perf_counter()
        obs, info = env.reset()
        done, steps, ret = False, 0, 0.0
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs, info))
            done = terminated or truncated
            steps += 1
            ret += reward
        results.append(EpisodeResult(
            result=info["result"], steps=steps, turns=info["turns"], total_return=ret,
            valid_actions=info["valid_action_count"], invalid_actions=info["invalid_action_count"],
            seconds=time.perf_counter() - start, trajectory_path=info.get("trajectory_path"),
        ))
    return results


def summarize(results: Sequence[EpisodeResult]) -> dict:
    """Win rate (95 % Wilson interval), mean turns/return, invalid-action rate, steps/s."""
    n = len(results)
    wins = sum(r.won for r in results)
    steps = sum(r.steps for r in results)
    seconds = sum(r.seconds for r in results)
    actions = sum(r.valid_actions + r.invalid_actions for r in results)
    low, high = wilson_interval(wins, n)
    return {
        "battles": n,
        "wins": wins,
        "losses": sum(r.result == "loss" for r in results),
        "ties": sum(r.result == "tie" for r in results),
        "win_rate": wins / n if n else float("nan"),
        "win_rate_95ci": (low, high),
        "mean_turns": float(np.mean([r.turns for r in results])) if n else float("nan"),
        "mean_return": float(np.mean([r.total_return for r in results])) if n else float("nan"),
        "invalid_action_rate": sum(r.invalid_actions for r in results) / actions if actions else 0.0,
        "steps_per_s": steps / seconds if seconds else float("nan"),
    }
