"""Evaluate a trained run: battles against heuristic baselines, or games on a local ladder.

Against baselines (the default, ``--eval_type heuristic``)::

    python -m metamon.rl.evaluate --run_name my_run --ckpt_dir runs [--ckpt 4] \\
        --formats gen1ou gen9ou [--opponents Grunt GymLeader] --battles 50 \\
        [--team_set builtin] [--server_url 127.0.0.1:8000] [--max_concurrent 5] [--greedy] \\
        [--seed 0] [--save_trajectories_to out/] [--json_out results.json] [--device cuda]

The agent can also be named as a player spec: ``--player run:runs/my_run@4`` (the same as
``--ckpt_dir runs --run_name my_run --ckpt 4``). ``--opponents`` take player specs too: baseline
names, dotted ``Player`` classes, or other trained runs (``run:runs/other@2``).

``--formats`` takes full Showdown format ids (``gen1ou``, ``gen9ou``; metamon's ``--gens 1
--formats ou`` pairs are written ``gen1ou``); an unknown id is a clear error naming it.
``--opponents`` defaults to the "heuristic composite" set (PokeEnvHeuristic, Gen1BossAI, Grunt,
GymLeader, EmeraldKaizo, RandomBaseline). ``--battles`` is per opponent per format. Without
``--server_url`` a local Showdown server is started on a free port and stopped afterwards.
``--ckpt`` is an epoch (default: the latest one saved). Policy actions are sampled unless
``--greedy``.

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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence

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
from metamon.rl.run_dir import RunInfo, available_epochs, build_spaces, check_output_dir, load_agent, run_path
from metamon.server import LocalShowdownServer, check_server, server_configuration, unique_username
from metamon.teams import get_metamon_teams

__all__ = ["evaluate_against_baselines", "evaluate_on_ladder", "format_table", "main"]

DEFAULT_OPPONENTS = list(HEURISTIC_COMPOSITE_BASELINES)


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
    battles: int = 10,
    server_url=8000,
    *,
    team_set: str = "builtin",
    max_concurrent: int = 5,
    sample: bool = True,
    seed: Optional[int] = None,
    save_trajectories_to: Optional[str] = None,
    timeout_s: float = 120.0,
    progress: Optional[Callable[[int], None]] = None,
) -> List[dict]:
    """Play ``battles`` battles of ``agent`` against each opponent in ``battle_format``.

    ``opponents`` are player specs (:class:`metamon.battles.PlayerSpec`: baseline names, dotted
    ``Player`` paths, trained runs ``run:DIR@N``; default: the heuristic composite set); both
    sides draw teams from ``team_set``. Opponents are played one after the
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
    if battles < 1 or max_concurrent < 1:
        raise MetamonRLError(f"battles and max_concurrent must be at least 1, got {battles} and {max_concurrent}")
    config = server_configuration(server_url)
    was_training = agent.training
    batcher = InferenceBatcher(agent, capacity=max_concurrent)
    factory = PlayerFactory(battle_format, server_configuration=config, team_set=team_set,
                            max_concurrent_battles=max_concurrent, sample=sample, device=batcher.device.type)
    rows = []
    try:
        for i, (name, spec) in enumerate(zip(opponents, specs)):
            player = _policy_player(
                agent, run_info, battle_format, batcher=batcher, team=get_metamon_teams(battle_format, team_set),
                sample=sample, seed=None if seed is None else seed + 2 * i, max_concurrent=max_concurrent,
                config=config, username=unique_username("Policy"), save_trajectories_to=save_trajectories_to,
            )
            opponent = factory.build(spec, seed=None if seed is None else seed + 2 * i + 1)
            try:
                results = play_battles(player, opponent, battles, timeout_s, progress=progress or None)
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


def _json_safe(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m metamon.rl.evaluate",
        description="Evaluate a trained run against heuristic baselines or on a local ladder.",
    )
    parser.add_argument("--player", default=None,
                        help="the agent to evaluate as a player spec, run:DIR@EPOCH (or --run_name/--ckpt_dir)")
    parser.add_argument("--run_name", default=None)
    parser.add_argument("--ckpt_dir", default=None, help="the --save_dir the run was trained with")
    parser.add_argument("--ckpt", type=int, default=None, help="epoch to load (default: latest)")
    parser.add_argument("--eval_type", choices=("heuristic", "ladder"), default="heuristic")
    parser.add_argument("--formats", nargs="+", default=["gen1ou"], help="full format ids, e.g. gen1ou gen9ou")
    parser.add_argument("--opponents", nargs="+", default=None,
                        help="player specs: baseline names, package.module.Class or run:DIR@EPOCH "
                        f"(default: {' '.join(DEFAULT_OPPONENTS)})")
    parser.add_argument("--battles", type=int, default=10,
                        help="battles per opponent per format (ladder: battles in total)")
    parser.add_argument("--team_set", default="builtin")
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


def _evaluated_run(args) -> PlayerSpec:
    """``--player run:DIR@N``, or ``--ckpt_dir``/``--run_name``/``--ckpt``, as a run spec."""
    if args.player is not None:
        if args.run_name is not None or args.ckpt_dir is not None or args.ckpt is not None:
            raise MetamonError("give either --player or --run_name/--ckpt_dir/--ckpt, not both")
        spec = check_spec(args.player)
        if spec.kind != "run":
            raise MetamonError(f"--player must name a trained run (run:DIR@EPOCH), got {args.player!r}")
        return spec
    if args.run_name is None or args.ckpt_dir is None:
        raise MetamonError("name the agent to evaluate: --player run:DIR@EPOCH, or --run_name and --ckpt_dir")
    return check_spec(PlayerSpec("run", str(run_path(args.ckpt_dir, args.run_name)), args.ckpt))


def _check_args(args) -> None:
    if args.battles < 1 or args.max_concurrent < 1:
        raise MetamonError("--battles and --max_concurrent must be at least 1")
    for battle_format in args.formats:
        check_format(battle_format)
    for name in args.opponents or ():
        check_spec(name)
    if args.eval_type == "ladder":
        if args.server_url is None:
            raise MetamonError("--eval_type ladder needs --server_url: the server the other players search on")
        if args.username is None:
            raise MetamonError("--eval_type ladder needs --username")
        if len(args.formats) != 1:
            raise MetamonError(f"--eval_type ladder plays one format; got --formats {' '.join(args.formats)}")
    elif args.username is not None:
        raise MetamonError("--username is only used with --eval_type ladder")
    if args.save_trajectories_to is not None:
        check_output_dir(args.save_trajectories_to, "--save_trajectories_to")
    if args.json_out is not None:
        if Path(args.json_out).is_dir():
            raise MetamonError(f"--json_out {args.json_out} is a folder; give the path of a file")
        check_output_dir(Path(args.json_out).parent, "--json_out")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        _check_args(args)
        if args.server_url is not None:
            check_server(args.server_url)
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        spec = _evaluated_run(args)
        run_dir = Path(spec.target)
        agent, info = load_agent(run_dir, spec.epoch, device=device)
    except (MetamonError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    epoch = spec.epoch if spec.epoch is not None else available_epochs(run_dir)[-1]
    if args.seed is not None:
        random.seed(args.seed)
        np.random.seed(args.seed)
        torch.manual_seed(args.seed)

    server = LocalShowdownServer() if args.server_url is None else None
    rows: List[dict] = []
    try:
        if server is not None:
            server.start()
        url = args.server_url if server is None else server.port
        if args.eval_type == "ladder":
            total = args.battles
        else:
            total = args.battles * len(args.formats) * len(args.opponents or DEFAULT_OPPONENTS)
        with tqdm(total=total, desc=f"{run_dir.name} epoch {epoch}", unit="battle") as bar:
            for battle_format in args.formats:
                common = dict(team_set=args.team_set, sample=not args.greedy, seed=args.seed,
                              save_trajectories_to=args.save_trajectories_to, progress=bar.update)
                if args.eval_type == "ladder":
                    rows += evaluate_on_ladder(agent, info, battle_format, args.battles, url, args.username,
                                               timeout_s=args.timeout or 600.0, **common)
                else:
                    rows += evaluate_against_baselines(
                        agent, info, battle_format, args.opponents, args.battles, url,
                        max_concurrent=args.max_concurrent, timeout_s=args.timeout or 120.0, **common,
                    )
    except ConnectionLostError as error:
        print(f"error: {error}\nno results are written: they would be partial", file=sys.stderr)
        return 1
    except MetamonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()

    print(format_table(rows))
    if args.json_out:
        payload = {
            "run_dir": str(run_dir), "epoch": epoch, "eval_type": args.eval_type, "sample": not args.greedy,
            "seed": args.seed, "team_set": args.team_set, "rows": rows,
        }
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(_json_safe(payload), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
