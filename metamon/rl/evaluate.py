"""Evaluate a trained run: battles against heuristic baselines, or games on a local ladder.

Against baselines (the default, ``--eval_type heuristic``)::

    python -m metamon.rl.evaluate --run_name my_run --ckpt_dir runs [--ckpt 4] \\
        --formats gen1ou gen9ou [--opponents Grunt GymLeader] --battles 50 \\
        [--team_set builtin] [--server_url 127.0.0.1:8000] [--max_concurrent 5] [--greedy] \\
        [--seed 0] [--save_trajectories_to out/] [--json_out results.json] [--device cuda]

The agent can also be named as a player spec: ``--player run:runs/my_run@4`` (the same as
``--ckpt_dir runs --run_name my_run --ckpt 4``). ``--opponents`` take player specs too: baseline
names, dotted ``Player`` classes, or other trained runs (``run:runs/other@2``).

``--formats`` takes full Showdown format ids (``gen1ou``, ``gen9ou``) or, as metamon does, tier
names combined with ``--gens``: ``--gens 1 2 --formats ou ubers`` is ``gen1ou gen1ubers gen2ou
gen2ubers`` (tiers without ``--gens`` mean ``--gens 1``, metamon's default; ``--gens`` without
``--formats`` means ``--formats ou``); an unknown id is a clear error naming it.
``--opponents`` defaults to the "heuristic composite" set (PokeEnvHeuristic, Gen1BossAI, Grunt,
GymLeader, EmeraldKaizo, RandomBaseline). ``--battles`` is per opponent per format (default 10);
metamon's ``--total_battles N`` instead splits N battles per format over the opponents (as evenly
as possible; ladder: N battles in total). Without ``--server_url`` a local Showdown server is
started on a free port and stopped afterwards. ``--ckpt`` is an epoch (default: the latest one
saved). Policy actions are sampled unless ``--greedy``.

metamon's command line works as it is::

    python -m metamon.rl.evaluate --agent SyntheticRLV2 --gens 1 --formats ou \\
        --total_battles 50 --checkpoints 40 48 [--team_set competitive]

``--agent NAME`` evaluates the published model ``NAME`` of :mod:`metamon.rl.pretrained` (the
player spec ``pretrained:NAME@N``; ``--player pretrained:NAME@N`` is the same). ``--checkpoints
N [N ...]`` runs one evaluation per epoch (for a run too; default: the model's default epoch, or
the run's latest), one table each. ``--battle_backend`` is accepted for metamon's scripts: only
``poke-env`` exists here (anything else is refused); ``--async_mp_context`` is accepted and has no
effect (battles run in this process on poke-env's event loop, not in subprocess envs).

On a local ladder (``--eval_type ladder``)::

    python -m metamon.server start --port 8000          # one server both sides can reach
    python -m metamon.rl.evaluate --eval_type ladder --server_url 8000 --run_name A \\
        --ckpt_dir runs --formats gen1ou --username PlayerA --battles 20 &
    python -m metamon.rl.evaluate --eval_type ladder --server_url 8000 --run_name B \\
        --ckpt_dir runs --formats gen1ou --username PlayerB --battles 20

queues ``--battles`` ladder searches in the (single) format; whoever else searches the same
format on the same server is matched: another evaluate process as above, a
``metamon.env.QueueOnLocalLadder`` env, or a human on the server's web client. Ladder mode needs
``--server_url`` (a server started here would be unknown to the other side).

Output: a tqdm progress bar, then one table row per (format, opponent): battles, errors
(battles that did not finish: stuck and forfeited, or never started; the win rate counts only
finished ones), win rate with its 95% Wilson interval, valid-action % (decisions whose chosen
action was legal and accepted), mean turns, and decision latency p50/p95 (ms, request to order).
``--json_out`` writes the same rows (plus the run, epoch and settings) as JSON. Exit code 2 means
bad input; 1 means the server went away during the run (noticed within a second,
:class:`metamon.battles.ConnectionLostError`): no table and no ``--json_out`` file are written
then, since the rows would be partial. ``--log_level`` (default ``quiet``) sets what metamon and
poke-env log (:mod:`metamon.logs`).

Python (the training loop's validation calls this between epochs)::

    rows = evaluate_against_baselines(agent, run_info, "gen1ou", ["Grunt"], battles=10,
                                      server_url=8000)

metamon's Python entry point, a published (or locally registered) model against the baselines,
returning AMAGO-style metrics keyed by format and opponent
(``"Average Win Rate in gen1ou_vs_Grunt"``, ``"Average Valid Actions in ..."``, ``"Battles in
..."``)::

    from metamon.rl.evaluate import pretrained_vs_baselines
    from metamon.rl.pretrained import get_pretrained_model
    metrics = pretrained_vs_baselines(get_pretrained_model("SmallRL"), "gen1ou", "competitive",
                                      total_battles=60)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import sys
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from poke_env.concurrency import POKE_LOOP
from poke_env.ps_client import AccountConfiguration
from tqdm import tqdm

from metamon.baselines import HEURISTIC_COMPOSITE_BASELINES
from metamon.battles import (
    BattleResult,
    ConnectionLostError,
    PlayerFactory,
    PlayerSpec,
    battle_results,
    check_spec,
    close_players,
    new_finished,
    play_battles,
    summarize,
    wait_for_battles,
)
from metamon.data.recording import recording_player
from metamon.errors import MetamonError
from metamon.formats import check_format
from metamon.logs import add_log_level_argument, apply_poke_env_level, configure_logging
from metamon.rl import MetamonRLError
from metamon.rl.player import InferenceBatcher, PolicyPlayer
from metamon.rl.pretrained import get_pretrained_model
from metamon.rl.run_dir import RunInfo, available_epochs, build_spaces, check_output_dir, load_agent, run_path
from metamon.server import LocalShowdownServer, check_server, server_configuration, unique_username
from metamon.teams import get_metamon_teams

__all__ = [
    "battle_formats",
    "check_battle_backend",
    "evaluate_against_baselines",
    "evaluate_on_ladder",
    "format_table",
    "json_safe",
    "main",
    "metrics_from_rows",
    "pretrained_vs_baselines",
    "showdown_url",
    "split_battles",
]

DEFAULT_OPPONENTS = list(HEURISTIC_COMPOSITE_BASELINES)
DEFAULT_BATTLES = 10  # per opponent per format
BATTLE_BACKENDS = ("poke-env",)  # metamon 1.5 also has "metamon" (its own client); not here
_FULL_FORMAT = re.compile(r"^gen\d")


def check_battle_backend(battle_backend: str) -> str:
    """``battle_backend`` if it is one this library has (``poke-env``), else a clear error."""
    if battle_backend not in BATTLE_BACKENDS:
        raise MetamonError(
            f"battle_backend {battle_backend!r} is not available: battles here are played with poke-env "
            f"(battle_backend='poke-env'); metamon's own 'metamon' backend is not part of this library"
        )
    return battle_backend


def battle_formats(formats: Optional[Sequence[str]] = None, gens: Optional[Sequence[int]] = None) -> List[str]:
    """Format ids from full ids (``gen1ou``) or metamon's ``--gens``/``--formats`` pairs.

    ``formats`` are full ids, or tier names (``ou``, ``ubers``, ...) combined with every one of
    ``gens`` as ``gen{g}{tier}`` (gens outer, tiers inner). Tiers without ``gens`` use metamon's
    default ``gens=[1]``; ``gens`` without ``formats`` use ``["ou"]``; ``formats=None`` without
    ``gens`` is ``["gen1ou"]``. Each id is checked (:func:`metamon.formats.check_format`); mixing
    full ids and tiers, or full ids with ``gens``, raises :class:`MetamonError`.
    """
    if formats is None:
        formats = ["ou"] if gens is not None else ["gen1ou"]
    formats = [str(f).strip().lower() for f in formats]
    full = [f for f in formats if _FULL_FORMAT.match(f)]
    tiers = [f for f in formats if not _FULL_FORMAT.match(f)]
    if full and (tiers or gens is not None):
        raise MetamonError(
            f"--formats {' '.join(formats)}: give full format ids (gen1ou gen9ou) without --gens, or metamon's "
            "tier names with --gens (--gens 1 9 --formats ou)"
        )
    if full:
        return [check_format(f) for f in full]
    gens = [1] if gens is None else list(gens)
    if not gens or not formats:
        raise MetamonError("--gens and --formats need at least one value each")
    return [check_format(f"gen{g}{tier}") for g in gens for tier in tiers]


def split_battles(total: int, n: int) -> List[int]:
    """``total`` battles over ``n`` opponents as evenly as possible, the first ones getting one
    more: ``split_battles(10, 4) == [3, 3, 2, 2]``."""
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise MetamonError(f"total_battles must be an int >= 1, got {total!r}")
    if n < 1:
        raise MetamonError("there must be at least one opponent")
    q, r = divmod(total, n)
    return [q + 1] * r + [q] * (n - r)


def metrics_from_rows(battle_format: str, rows: Sequence[dict]) -> dict:
    """AMAGO's metric names for rows of :func:`evaluate_against_baselines`, per opponent:
    ``"Average Win Rate in {format}_vs_{opponent}"`` (finished battles, in [0, 1]) and
    ``"Average Valid Actions in {format}_vs_{opponent}"`` (fraction of legal decisions)."""
    metrics = {}
    for row in rows:
        name = f"{battle_format}_vs_{row['opponent']}"
        metrics[f"Average Win Rate in {name}"] = row["win_rate"]
        metrics[f"Average Valid Actions in {name}"] = row["valid_actions"]
    return metrics


@contextlib.contextmanager
def showdown_url(server_url=None) -> Iterator:
    """``server_url`` as given (checked to answer), or, for None, the port of a local Showdown
    server started for the ``with`` block and stopped after it."""
    if server_url is not None:
        check_server(server_url)
        yield server_url
        return
    server = LocalShowdownServer()
    server.start()
    try:
        yield server.port
    finally:
        server.stop()


def _policy_player(agent, run_info: RunInfo, battle_format: str, *, batcher, team, sample, seed,
                   max_concurrent, config, username, save_trajectories_to) -> PolicyPlayer:
    obs_space, action_space, reward_fn = build_spaces(run_info)
    kwargs = dict(
        account_configuration=AccountConfiguration(username, None),
        battle_format=battle_format,
        max_concurrent_battles=max_concurrent,
        server_configuration=config,
        team=team,
        sample=sample,
        batcher=batcher,
        seed=seed,
    )
    if save_trajectories_to is not None:
        player = recording_player(PolicyPlayer)(
            agent, obs_space, action_space, reward_fn, save_trajectories_to=save_trajectories_to, **kwargs
        )
    else:
        player = PolicyPlayer(agent, obs_space, action_space, reward_fn, **kwargs)
    apply_poke_env_level(player.logger)
    return player


def _row(battle_format: str, opponent: str, results: Sequence[BattleResult], player: PolicyPlayer) -> dict:
    finished = [r for r in results if r.outcome != "error"]
    row = {"format": battle_format, "opponent": opponent, "battles": len(results), **summarize(results)}
    row["mean_turns"] = float(np.mean([r.turns for r in finished])) if finished else float("nan")
    row.update(player.stats())
    # AMAGO's "Valid Actions" metric: valid / (valid + invalid) as a fraction.
    row["valid_actions"] = row["valid_action_pct"] / 100.0
    if hasattr(player, "recorded"):
        row["trajectories_written"] = len(player.recorded)
    return row


def evaluate_against_baselines(
    agent,
    run_info: RunInfo,
    battle_format: str,
    opponents: Optional[Sequence[str]] = None,
    battles: Union[int, Sequence[int]] = DEFAULT_BATTLES,
    server_url=8000,
    *,
    team_set="builtin",
    max_concurrent: int = 5,
    sample: bool = True,
    seed: Optional[int] = None,
    save_trajectories_to: Optional[str] = None,
    timeout_s: float = 120.0,
    progress: Optional[Callable[[int], None]] = None,
) -> List[dict]:
    """Play ``battles`` battles of ``agent`` against each opponent in ``battle_format``.

    ``opponents`` are player specs (:class:`metamon.battles.PlayerSpec`: baseline names, dotted
    ``Player`` paths, trained runs ``run:DIR@N``, published models ``pretrained:NAME@N``;
    default: the heuristic composite set); ``battles`` is one count for every opponent or one
    count per opponent (an opponent with 0 battles is left out). Both sides draw teams from
    ``team_set``: a team-set name (:func:`metamon.teams.get_metamon_teams`) or a team set object
    every player shares (what metamon's scripts pass). Opponents are played one after the
    other, ``max_concurrent`` battles at a time, all through one :class:`InferenceBatcher`.
    ``progress(k)`` is called as battles finish (``None``/``False``: no progress reports). The
    agent's train/eval mode is restored at the end (pass the unwrapped module, not a DDP wrapper).

    Returns one dict per opponent: ``format``, ``opponent``, ``battles``, ``win``/``loss``/
    ``tie``/``error``, ``finished``, ``win_rate``, ``ci_low``/``ci_high`` (95% Wilson),
    ``mean_turns``, ``decisions``, ``invalid_fallbacks``, ``rejected_choices``,
    ``inference_errors``, ``valid_action_pct`` (and ``valid_actions``, the same as a fraction),
    ``latency_p50_ms``/``latency_p95_ms`` (and
    ``trajectories_written`` when saving).
    """
    check_format(battle_format)
    opponents = list(opponents) if opponents is not None else list(DEFAULT_OPPONENTS)
    specs = [check_spec(name) for name in opponents]
    counts = [battles] * len(opponents) if isinstance(battles, int) else list(battles)
    if len(counts) != len(opponents) or any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in counts):
        raise MetamonRLError(f"battles must be an int or one int >= 0 per opponent {opponents}, got {battles!r}")
    if (isinstance(battles, int) and battles < 1) or max_concurrent < 1:
        raise MetamonRLError(f"battles and max_concurrent must be at least 1, got {battles} and {max_concurrent}")
    config = server_configuration(server_url)
    named_set = isinstance(team_set, str)
    was_training = agent.training
    batcher = InferenceBatcher(agent, capacity=max_concurrent)
    factory = PlayerFactory(battle_format, server_configuration=config, team_set=team_set if named_set else None,
                            team=None if named_set else team_set, max_concurrent_battles=max_concurrent,
                            sample=sample, device=batcher.device.type)
    rows = []
    try:
        for i, (name, spec, n) in enumerate(zip(opponents, specs, counts)):
            if n == 0:
                continue
            player = _policy_player(
                agent, run_info, battle_format, batcher=batcher,
                team=get_metamon_teams(battle_format, team_set) if named_set else team_set,
                sample=sample, seed=None if seed is None else seed + 2 * i, max_concurrent=max_concurrent,
                config=config, username=unique_username("Policy"), save_trajectories_to=save_trajectories_to,
            )
            opponent = factory.build(spec, seed=None if seed is None else seed + 2 * i + 1)
            try:
                results = play_battles(player, opponent, n, timeout_s, progress=progress or None)
            finally:
                close_players(player, opponent)
                player.close()
            rows.append(_row(battle_format, name, results, player))
    finally:
        factory.close()
        batcher.close()
        agent.train(was_training)
    return rows


def evaluate_on_ladder(
    agent,
    run_info: RunInfo,
    battle_format: str,
    battles: int,
    server_url,
    username: str,
    *,
    team_set: str = "builtin",
    sample: bool = True,
    seed: Optional[int] = None,
    save_trajectories_to: Optional[str] = None,
    timeout_s: float = 600.0,
    progress: Optional[Callable[[int], None]] = None,
) -> List[dict]:
    """Queue ``battles`` ladder searches as ``username`` on the server at ``server_url``, one
    game at a time, and return one row (opponent ``"ladder"``) like
    :func:`evaluate_against_baselines` plus ``opponents`` (the usernames met). Gives up when no
    battle finishes for ``timeout_s`` seconds (waiting for a match included)."""
    check_format(battle_format)
    check_server(server_url)
    was_training = agent.training
    batcher = InferenceBatcher(agent, capacity=1)
    player = _policy_player(
        agent, run_info, battle_format, batcher=batcher, team=get_metamon_teams(battle_format, team_set), sample=sample,
        seed=seed, max_concurrent=1, config=server_configuration(server_url), username=username,
        save_trajectories_to=save_trajectories_to,
    )
    before = set(player.battles)
    future = asyncio.run_coroutine_threadsafe(player.ladder(battles), POKE_LOOP)
    try:
        wait_for_battles(future, player, lambda: new_finished(player, before), timeout_s, progress or None)
        results = battle_results(player, before, battles)
        row = _row(battle_format, "ladder", results, player)
        row["opponents"] = sorted({b.opponent_username for b in player.battles.values() if b.opponent_username})
    finally:
        close_players(player)
        player.close()
        batcher.close()
        agent.train(was_training)
    return [row]


def pretrained_vs_baselines(
    pretrained_model,
    battle_format: str,
    team_set,
    checkpoint: Optional[int] = None,
    total_battles: int = 250,
    parallel_actors_per_baseline: int = 5,
    async_mp_context: str = "forkserver",
    battle_backend: str = "poke-env",
    log_to_wandb: bool = False,
    save_trajectories_to: Optional[str] = None,
    baselines: Optional[Sequence] = None,
    action_temperature: float = 1.0,
    *,
    server_url=None,
    device: Optional[str] = None,
    seed: Optional[int] = None,
    timeout_s: float = 120.0,
    show_progress: bool = True,
) -> dict:
    """metamon's ``pretrained_vs_baselines``: a registry model against heuristic baselines.

    ``pretrained_model`` is a :class:`metamon.rl.pretrained.PretrainedModel` (or a registry name);
    its agent (``initialize_agent(checkpoint, action_temperature=...)``; ``checkpoint=None``: the
    model's default) plays ``total_battles`` battles in ``battle_format``, split as evenly as
    possible over ``baselines`` (player specs or Player classes; default: the heuristic
    composite set PokeEnvHeuristic, Gen1BossAI, Grunt, GymLeader, EmeraldKaizo, RandomBaseline),
    ``parallel_actors_per_baseline`` battles at a time (at least 1: metamon's scripts pass
    ``min(5, n // 10)``, which is 0 for n < 10). Both sides draw teams from ``team_set``: a name
    (``"competitive"``, ``"builtin"``, a folder) or a team set object
    (``get_metamon_teams("gen1ou", "competitive")``). The model plays with its own observation
    space, action space and reward (its :meth:`run_info`).

    ``battle_backend`` must be ``"poke-env"`` (:func:`check_battle_backend`);
    ``async_mp_context`` is accepted for metamon's callers and unused (no subprocess envs).
    ``save_trajectories_to`` writes one trajectory file per battle (our side) under
    ``{dir}/{battle_format}/``. ``log_to_wandb`` logs the metrics to the active wandb run (one
    is started in project ``$AMAGO_WANDB_PROJECT``, default "amago", when none is).

    Keyword-only additions: ``server_url`` (None: a local Showdown server is started for the
    call and stopped after it), ``device`` (default: cuda when available), ``seed``,
    ``timeout_s`` (seconds without a finished battle before giving up), ``show_progress``.

    Returns AMAGO-style metrics keyed by format and opponent: ``"Average Win Rate in
    {format}_vs_{opponent}"`` (finished battles), ``"Average Valid Actions in ..."`` and
    ``"Battles in ..."`` (battles played, errors included), for each baseline that played.
    """
    check_battle_backend(battle_backend)
    check_format(battle_format)
    if isinstance(pretrained_model, str):
        pretrained_model = get_pretrained_model(pretrained_model)
    opponents = list(baselines) if baselines is not None else list(DEFAULT_OPPONENTS)
    for opponent in opponents:
        check_spec(opponent)
    counts = split_battles(total_battles, len(opponents))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    info = pretrained_model.run_info()  # configures gin: before the agent, whose configuration then stays bound
    agent = pretrained_model.initialize_agent(checkpoint=checkpoint, action_temperature=action_temperature)
    agent.to(device)
    if seed is not None:
        _seed_everything(seed)
    label = getattr(pretrained_model, "model_name", type(pretrained_model).__name__)
    with showdown_url(server_url) as url, tqdm(total=total_battles, desc=f"{label} vs baselines", unit="battle",
                                              disable=not show_progress) as bar:
        rows = evaluate_against_baselines(
            agent, info, battle_format, opponents, counts, url, team_set=team_set,
            max_concurrent=max(1, int(parallel_actors_per_baseline)), seed=seed,
            save_trajectories_to=save_trajectories_to, timeout_s=timeout_s, progress=bar.update,
        )
    metrics = metrics_from_rows(battle_format, rows)
    for row in rows:
        metrics[f"Battles in {battle_format}_vs_{row['opponent']}"] = row["battles"]
    if log_to_wandb:
        _log_to_wandb(metrics)
    return metrics


def _log_to_wandb(metrics: dict) -> None:
    """Log ``metrics`` under ``test/`` to the active wandb run (starting one when none is)."""
    import wandb  # lazy: wandb is heavy and only needed with log_to_wandb

    if wandb.run is None:
        wandb.init(project=os.environ.get("AMAGO_WANDB_PROJECT") or "amago",
                   entity=os.environ.get("AMAGO_WANDB_ENTITY"))
    wandb.log({f"test/{name}": value for name, value in metrics.items()})


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def _num(x: float, fmt: str = ".1f") -> str:
    return "-" if x is None or math.isnan(x) else format(x, fmt)


def format_table(rows: Sequence[dict]) -> str:
    """Rows as a fixed-width text table."""
    header = ("format", "opponent", "battles", "errors", "win %", "95% CI", "valid %", "turns", "p50 ms", "p95 ms")
    lines = [
        (
            r["format"], r["opponent"], str(r["battles"]), str(r.get("error", 0)), _pct(r["win_rate"]),
            f"{_pct(r['ci_low'])}-{_pct(r['ci_high'])}", _num(r["valid_action_pct"]), _num(r["mean_turns"]),
            _num(r["latency_p50_ms"]), _num(r["latency_p95_ms"]),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*ln) for ln in lines])


def json_safe(value):
    """``value`` with every NaN float (nested in dicts, lists, tuples) replaced by None, for JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m metamon.rl.evaluate",
        description="Evaluate a trained run or a published model against heuristic baselines or on a local ladder.",
    )
    parser.add_argument("--player", default=None,
                        help="the agent to evaluate as a player spec, run:DIR@EPOCH or pretrained:NAME@EPOCH "
                        "(or --run_name/--ckpt_dir, or --agent)")
    parser.add_argument("--agent", default=None, help="metamon's flag: a published model's name (pretrained:NAME)")
    parser.add_argument("--run_name", default=None)
    parser.add_argument("--ckpt_dir", default=None, help="the --save_dir the run was trained with")
    parser.add_argument("--ckpt", type=int, default=None, help="epoch to load (default: latest)")
    parser.add_argument("--checkpoints", type=int, nargs="+", default=None,
                        help="metamon's flag: evaluate each of these epochs in turn")
    parser.add_argument("--eval_type", choices=("heuristic", "ladder"), default="heuristic")
    parser.add_argument("--gens", type=int, nargs="+", default=None,
                        help="metamon's flag: generations, combined with tier names in --formats (gen{g}{tier})")
    parser.add_argument("--formats", nargs="+", default=None,
                        help="full format ids (gen1ou gen9ou), or tier names (ou ubers) with --gens; default gen1ou")
    parser.add_argument("--opponents", nargs="+", default=None,
                        help="player specs: baseline names, package.module.Class, run:DIR@EPOCH or "
                        f"pretrained:NAME@EPOCH (default: {' '.join(DEFAULT_OPPONENTS)})")
    battles = parser.add_mutually_exclusive_group()
    battles.add_argument("--battles", type=int, default=None,
                         help=f"battles per opponent per format (ladder: battles in total; default {DEFAULT_BATTLES})")
    battles.add_argument("--total_battles", type=int, default=None,
                         help="metamon's flag: battles per format, split evenly over the opponents")
    parser.add_argument("--team_set", default="builtin")
    parser.add_argument("--battle_backend", default="poke-env", help="metamon's flag: only poke-env exists here")
    parser.add_argument("--async_mp_context", default=None, help="metamon's flag: accepted, no effect here")
    parser.add_argument("--server_url", default=None, help="default: start a local server on a free port")
    parser.add_argument("--username", default=None, help="ladder mode: our Showdown name")
    parser.add_argument("--save_trajectories_to", default=None)
    parser.add_argument("--json_out", default=None)
    parser.add_argument("--greedy", action="store_true", help="take the most likely action instead of sampling")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max_concurrent", type=int, default=5, help="battles played at once per opponent")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds without a finished battle before giving up (default 120; ladder 600)")
    add_log_level_argument(parser)
    return parser


def _evaluated_agent(args) -> Tuple[PlayerSpec, List[Optional[int]]]:
    """The agent to evaluate as a spec without epoch, and the epochs to evaluate (None: the
    run's latest / the model's default), from ``--agent``, ``--player`` or
    ``--ckpt_dir``/``--run_name``, with ``--ckpt`` / ``@N`` / ``--checkpoints``. Each is checked."""
    run_flags = args.run_name is not None or args.ckpt_dir is not None
    if args.agent is not None:
        if args.player is not None or run_flags:
            raise MetamonError("give one agent: --agent NAME, --player SPEC or --run_name/--ckpt_dir")
        spec = PlayerSpec("pretrained", args.agent, args.ckpt)
    elif args.player is not None:
        if run_flags or args.ckpt is not None:
            raise MetamonError("give either --player or --run_name/--ckpt_dir/--ckpt, not both")
        spec = PlayerSpec.parse(args.player)
        if spec.kind not in ("run", "pretrained"):
            raise MetamonError(
                f"--player must name a trained run (run:DIR@EPOCH) or a published model (pretrained:NAME@EPOCH), "
                f"got {args.player!r}"
            )
    else:
        if args.run_name is None or args.ckpt_dir is None:
            raise MetamonError(
                "name the agent to evaluate: --player run:DIR@EPOCH, --run_name and --ckpt_dir, or --agent NAME"
            )
        spec = PlayerSpec("run", str(run_path(args.ckpt_dir, args.run_name)), args.ckpt)
    if args.checkpoints is not None:
        if spec.epoch is not None:
            raise MetamonError(f"give the epochs once: --checkpoints {args.checkpoints} and epoch {spec.epoch}")
        epochs: List[Optional[int]] = list(dict.fromkeys(args.checkpoints))
    else:
        epochs = [spec.epoch]
    spec = PlayerSpec(spec.kind, spec.target)
    for epoch in epochs:
        check_spec(PlayerSpec(spec.kind, spec.target, epoch))
    return spec, epochs


def _load(spec: PlayerSpec, epoch: Optional[int], device: str) -> Tuple[object, RunInfo, int]:
    """``(agent, run_info, epoch)`` of a ``run`` or ``pretrained`` spec at ``epoch`` (None: the
    run's latest epoch / the model's default checkpoint), the agent on ``device`` in eval mode."""
    if spec.kind == "pretrained":
        model = get_pretrained_model(spec.target)
        info = model.run_info()  # configures gin: before the agent, whose configuration then stays bound
        agent = model.initialize_agent(checkpoint=epoch)
        agent.to(device)
        return agent, info, model.default_checkpoint if epoch is None else epoch
    run_dir = Path(spec.target).expanduser()
    agent, info = load_agent(run_dir, epoch, device=device)
    return agent, info, available_epochs(run_dir)[-1] if epoch is None else epoch


def _check_args(args) -> List[str]:
    """Check the flags that need no agent; return the battle formats to play."""
    check_battle_backend(args.battle_backend)
    battles = args.battles if args.total_battles is None else args.total_battles
    if (battles is not None and battles < 1) or args.max_concurrent < 1:
        raise MetamonError("--battles, --total_battles and --max_concurrent must be at least 1")
    formats = battle_formats(args.formats, args.gens)
    for name in args.opponents or ():
        check_spec(name)
    if args.eval_type == "ladder":
        if args.server_url is None:
            raise MetamonError("--eval_type ladder needs --server_url: the server the other players search on")
        if args.username is None:
            raise MetamonError("--eval_type ladder needs --username")
        if len(formats) != 1:
            raise MetamonError(f"--eval_type ladder plays one format; got --formats {' '.join(formats)}")
    elif args.username is not None:
        raise MetamonError("--username is only used with --eval_type ladder")
    if args.save_trajectories_to is not None:
        check_output_dir(args.save_trajectories_to, "--save_trajectories_to")
    if args.json_out is not None:
        if Path(args.json_out).is_dir():
            raise MetamonError(f"--json_out {args.json_out} is a folder; give the path of a file")
        check_output_dir(Path(args.json_out).parent, "--json_out")
    return formats


def _battles_per_opponent(args) -> Union[int, List[int]]:
    """``--battles`` (one count for every opponent), or ``--total_battles`` split over them."""
    if args.total_battles is None:
        return DEFAULT_BATTLES if args.battles is None else args.battles
    return split_battles(args.total_battles, len(args.opponents or DEFAULT_OPPONENTS))


def _evaluate_epoch(args, agent, info: RunInfo, formats: Sequence[str], url, desc: str) -> List[dict]:
    """Every format of one loaded agent: ladder games or battles against the opponents."""
    rows: List[dict] = []
    if args.eval_type == "ladder":
        total = args.battles or args.total_battles or DEFAULT_BATTLES
        per_opponent = None
    else:
        per_opponent = _battles_per_opponent(args)
        counts = per_opponent if isinstance(per_opponent, list) else [per_opponent] * len(
            args.opponents or DEFAULT_OPPONENTS)
        total = sum(counts) * len(formats)
    with tqdm(total=total, desc=desc, unit="battle") as bar:
        for battle_format in formats:
            common = dict(team_set=args.team_set, sample=not args.greedy, seed=args.seed,
                          save_trajectories_to=args.save_trajectories_to, progress=bar.update)
            if args.eval_type == "ladder":
                rows += evaluate_on_ladder(agent, info, battle_format, total, url, args.username,
                                           timeout_s=args.timeout or 600.0, **common)
            else:
                rows += evaluate_against_baselines(
                    agent, info, battle_format, args.opponents, per_opponent, url,
                    max_concurrent=args.max_concurrent, timeout_s=args.timeout or 120.0, **common,
                )
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        formats = _check_args(args)
        if args.server_url is not None:
            check_server(args.server_url)
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        spec, epochs = _evaluated_agent(args)
        loaded = _load(spec, epochs[0], device)
    except (MetamonError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.seed is not None:
        _seed_everything(args.seed)

    label = Path(spec.target).name if spec.kind == "run" else spec.target
    results: List[Tuple[int, List[dict]]] = []
    try:
        with showdown_url(args.server_url) as url:
            for i, epoch in enumerate(epochs):
                agent, info, epoch = loaded if i == 0 else _load(spec, epoch, device)
                rows = _evaluate_epoch(args, agent, info, formats, url, f"{label} epoch {epoch}")
                for row in rows:
                    row["epoch"] = epoch
                results.append((epoch, rows))
                agent = loaded = None  # free this epoch's agent before the next one loads
    except ConnectionLostError as error:
        print(f"error: {error}\nno results are written: they would be partial", file=sys.stderr)
        return 1
    except (MetamonError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    for epoch, rows in results:
        if len(results) > 1:
            print(f"\n{label} epoch {epoch}")
        print(format_table(rows))
    if args.json_out:
        payload = {
            "agent": str(PlayerSpec(spec.kind, spec.target)), "epochs": [epoch for epoch, _ in results],
            "eval_type": args.eval_type, "sample": not args.greedy, "seed": args.seed, "team_set": args.team_set,
            "rows": [row for _, rows in results for row in rows],
        }
        if spec.kind == "run":
            payload["run_dir"] = str(Path(spec.target))
        if len(results) == 1:
            payload["epoch"] = results[0][0]
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(json_safe(payload), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
