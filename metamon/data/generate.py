"""Generate trajectory data by letting two poke-env players battle on local Showdown servers.

Command line (``scripts/generate_selfplay_data.py`` is the same tool with the flag defaults of
metamon's self-play workflow)::

    python -m metamon.data.generate --player GymLeader --opponent Grunt \\
        --battle_format gen1ou --team_set builtin --num_battles 1000 --output_dir OUT \\
        [--parallel 4 | --server_url 127.0.0.1:8000] [--concurrent 5] [--timeout 120]
        [--battle_timeout 300] [--seed 0] [--log_level quiet]

Both players are recorded (:func:`metamon.data.recording.recording_player`), so every battle
gives two files, one per point of view, sharing one battle id, in ``OUT/<battle_format>/``.
``--player`` / ``--opponent`` take player specs (:class:`metamon.battles.PlayerSpec`): a
registered baseline name, a dotted path to any poke-env ``Player`` class, or a trained run
``run:DIR@EPOCH`` (``--opponent`` defaults to ``--player``: self-play). Model vs model and model
vs baseline both work; a trained run's fallback decisions (illegal choices replaced by a random
legal order) are flagged invalid in its files.

Servers: ``--parallel K`` runs K worker processes; without ``--server_url`` each starts its own
local Showdown server on a free port, with it every worker connects to that one server.
Each worker plays ``--concurrent`` battles at once, in batches after which the players'
finished battles are dropped (``reset_battles``) so memory stays bounded.

Safety: files are written atomically, one per player per battle, as soon as a battle ends, so
an interrupted run (Ctrl-C, kill) loses only the battles in flight, and re-running with the
same ``OUT`` adds new battles (new random usernames, hence new ids) next to the old ones,
never overwriting them.

Hung battles: a battle still running ``--battle_timeout`` seconds after a player's first
decision in it is forfeited by that player (an ``async`` ``choose_move`` that never returns is
cancelled; see :mod:`metamon.data.recording`); it still finishes, so both files are complete,
and the summary lists it. As a last resort, a batch in which no battle finishes for
``--timeout`` seconds (a hung server, or a synchronous ``choose_move`` blocking the event loop)
is abandoned (its open battles are forfeited and counted as errors) and the worker carries on
with fresh players.

A server that goes away (stopped, crashed) is noticed within a second
(:class:`metamon.battles.ConnectionLostError`): the run stops with a message naming the server,
the battles finished before it are kept (each file is complete) and the exit code is 1; with
``--parallel`` the worker that lost its server reports it and the exit code is 1 as well.

At the end a summary is printed: battles finished, wins of each side, ties, errors, mean turns,
the invalid-action rate (decisions whose first choice the server rejected / all recorded
decisions of both players, from the recorded ``invalid_actions`` flags) and battles/s.
Exit code 2 means bad input (unknown format or player, missing team set, no server); 1 means
nothing finished, a worker failed or the server went away. ``--log_level`` (default ``quiet``)
sets what metamon and poke-env log, in every worker (:mod:`metamon.logs`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from tqdm import tqdm

from metamon.battles import ConnectionLostError, PlayerFactory, PlayerSpec, check_spec, close_players, play_battles
from metamon.data.recording import recording_player
from metamon.errors import MetamonError
from metamon.formats import check_format
from metamon.logs import add_log_level_argument, configure_logging
from metamon.server import LocalShowdownServer, check_server, server_configuration, unique_username
from metamon.teams import get_metamon_teams

__all__ = [
    "BattleRecord",
    "GenerationSummary",
    "count_trajectory_files",
    "generate",
    "play_recorded_battles",
    "build_parser",
    "main",
]

DEFAULT_BATCH_PER_CONCURRENT = 5  # battles per batch = concurrent * this


@dataclass(frozen=True)
class BattleRecord:
    """One finished battle: ``result`` from the first player's side, decisions and rejected
    first choices summed over the recorded sides, ``files`` = trajectory files written (2)."""

    battle_id: str
    result: str
    turns: int
    decisions: int
    invalid: int
    files: int


@dataclass
class GenerationSummary:
    """What a run did. ``battle_timeouts`` lists the tags of battles a player forfeited at
    ``battle_timeout_s`` (they finished and are among ``battles``); ``abandoned`` counts battles
    given up by the stall timeout (``timeout_s`` seconds without any finished battle), which
    are forfeited and also counted in ``errors``."""

    requested: int
    existing_files: int
    timeout_s: float = float("nan")
    battle_timeout_s: Optional[float] = None
    battles: List[BattleRecord] = field(default_factory=list)
    write_errors: List[str] = field(default_factory=list)
    worker_failures: List[str] = field(default_factory=list)
    battle_timeouts: List[str] = field(default_factory=list)
    abandoned: int = 0
    seconds: float = 0.0

    @property
    def finished(self) -> int:
        return len(self.battles)

    @property
    def errors(self) -> int:
        """Requested battles that did not finish (timed out, crashed, never started)."""
        return max(0, self.requested - self.finished)

    def count(self, result: str) -> int:
        return sum(b.result == result for b in self.battles)

    @property
    def files_written(self) -> int:
        return sum(b.files for b in self.battles)

    @property
    def mean_turns(self) -> float:
        return sum(b.turns for b in self.battles) / self.finished if self.battles else float("nan")

    @property
    def invalid_rate(self) -> float:
        """Rejected first choices / recorded decisions, both players, all battles."""
        decisions = sum(b.decisions for b in self.battles)
        return sum(b.invalid for b in self.battles) / decisions if decisions else 0.0

    @property
    def battles_per_second(self) -> float:
        return self.finished / self.seconds if self.seconds > 0 else float("nan")

    def report(self, player: str, opponent: str) -> str:
        lines = [
            f"{self.finished} of {self.requested} battles finished in {self.seconds:.1f} s "
            f"({self.battles_per_second:.2f} battles/s); {self.errors} errored",
            f"{player} (player) wins {self.count('win')}, {opponent} (opponent) wins "
            f"{self.count('loss')}, ties {self.count('tie')}",
            f"mean turns {self.mean_turns:.1f}, invalid-action rate {100 * self.invalid_rate:.2f}%",
            f"files: {self.files_written} written, {self.existing_files} were already there",
        ]
        if self.battle_timeouts:
            lines.append(f"{len(self.battle_timeouts)} battles timed out after --battle_timeout "
                         f"{self.battle_timeout_s:g} s (a player's choose_move hung or was too slow) and were "
                         f"forfeited: {self.battle_timeouts[:3]}")
        if self.abandoned:
            lines.append(f"{self.abandoned} battles timed out: no battle finished for {self.timeout_s:g} s "
                         f"(a player's choose_move or the server hung), so they were forfeited; "
                         f"raise --timeout if battles are legitimately that slow")
        if self.write_errors:
            lines.append(f"{len(self.write_errors)} trajectory files could not be written: {self.write_errors[:3]}")
        if self.worker_failures:
            lines.append(f"{len(self.worker_failures)} workers failed: {self.worker_failures}")
        return "\n".join(lines)


def count_trajectory_files(output_dir, battle_format: str) -> int:
    """``*.json.lz4`` files already in ``output_dir/<battle_format>/``."""
    folder = Path(output_dir) / battle_format
    return sum(1 for _ in folder.glob("*.json.lz4")) if folder.is_dir() else 0


# ------------------------------------------------------------------------------------------
# One worker: two recording players on one server
# ------------------------------------------------------------------------------------------
def _pair_records(player_records, opponent_records) -> List[BattleRecord]:
    """Join the two sides' :class:`RecordedBattle` lists by battle tag (one server: unique)."""
    theirs = {r.battle_tag: r for r in opponent_records}
    flipped = {"win": "loss", "loss": "win", "tie": "tie"}
    battles = []
    for mine in player_records:
        other = theirs.pop(mine.battle_tag, None)
        sides = [mine] + ([other] if other else [])
        battles.append(BattleRecord(mine.battle_id, mine.result, mine.turns,
                                    sum(s.decisions for s in sides), sum(s.invalid for s in sides), len(sides)))
    for other in theirs.values():  # the player's file could not be written
        battles.append(BattleRecord(other.battle_id, flipped[other.result], other.turns,
                                    other.decisions, other.invalid, 1))
    return battles


def _make_players(factory: PlayerFactory, player: str, opponent: str, output_dir,
                  battle_timeout_s: Optional[float], rng: random.Random):
    """Two recording players built from their specs, with distinct seeded usernames."""
    specs = [PlayerSpec.parse(player), PlayerSpec.parse(opponent)]
    names = [unique_username(s.label, rng) for s in specs]
    while names[1] == names[0]:
        names[1] = unique_username(specs[1].label, rng)
    return [
        factory.build(spec, username=name, wrap=recording_player, seed=rng.randrange(2**31),
                      save_trajectories_to=output_dir, battle_timeout_s=battle_timeout_s)
        for spec, name in zip(specs, names)
    ]


def play_recorded_battles(
    player: str,
    opponent: str,
    battle_format: str,
    num_battles: int,
    output_dir,
    config,
    team_set: str = "builtin",
    concurrent: int = 5,
    timeout_s: float = 120.0,
    battle_timeout_s: Optional[float] = 300.0,
    seed: Optional[int] = None,
    progress: Optional[Callable[[int], None]] = None,
) -> tuple[List[BattleRecord], List[str], List[str], int]:
    """Play ``num_battles`` recorded battles on the server ``config`` (a poke-env
    ``ServerConfiguration``) in this process; return the finished battles, the write errors,
    the tags of battles forfeited at ``battle_timeout_s`` and the number of battles abandoned
    by the stall timeout ``timeout_s``.

    Battles run in batches of ``concurrent * 5``; after a batch the players forget their
    finished battles. A batch that times out (see :func:`metamon.battles.play_battles`) is
    abandoned and the next one uses fresh players. Trained agents are loaded once.
    """
    rng = random.Random(seed)
    batch = concurrent * DEFAULT_BATCH_PER_CONCURRENT
    factory = PlayerFactory(battle_format, server_configuration=config, team_set=team_set,
                            max_concurrent_battles=concurrent)

    def new_players():
        return _make_players(factory, player, opponent, output_dir, battle_timeout_s, rng)

    players = []
    records, write_errors, timed_out, abandoned = [], [], [], 0
    remaining = num_battles
    try:
        players = new_players()
        while remaining > 0:
            n = min(batch, remaining)
            results = play_battles(players[0], players[1], n, timeout_s, progress=progress)
            remaining -= n
            records += _pair_records(players[0].recorded, players[1].recorded)
            write_errors += players[0].record_errors + players[1].record_errors
            timed_out += players[0].timed_out + players[1].timed_out
            for p in players:
                p.recorded.clear()
                p.record_errors.clear()
                p.timed_out.clear()
            stuck = sum(r.outcome == "error" for r in results)
            abandoned += stuck
            if stuck:
                close_players(*players)
                players = new_players()
            else:
                for p in players:
                    p.reset_battles()
    finally:
        close_players(*players)
        factory.close()
    return records, write_errors, timed_out, abandoned


def _worker(index: int, kwargs: dict, server_url: Optional[str], messages, log_level: Optional[str] = None) -> None:
    """Worker process body: own server (unless ``server_url``), report through ``messages``;
    ``log_level`` (a ``--log_level`` value) is applied first (a spawned process starts afresh)."""
    def progress(k: int) -> None:
        messages.put(("progress", index, k))

    if log_level is not None:
        configure_logging(log_level)
    try:
        if server_url is not None:
            outcome = play_recorded_battles(config=server_configuration(server_url), progress=progress, **kwargs)
        else:
            with LocalShowdownServer() as server:
                outcome = play_recorded_battles(config=server.server_configuration, progress=progress, **kwargs)
        messages.put(("done", index, outcome))
    except KeyboardInterrupt:
        messages.put(("failed", index, "interrupted"))
    except BaseException as error:  # noqa: BLE001 - reported by the parent
        messages.put(("failed", index, f"{type(error).__name__}: {error}"))


def _split(total: int, parts: int) -> List[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


def _run_workers(kwargs: dict, num_battles: int, parallel: int, server_url, bar, summary,
                 log_level: Optional[str] = None) -> None:
    ctx = multiprocessing.get_context("spawn")  # poke-env runs an event-loop thread: never fork
    messages = ctx.Queue()
    shares = _split(num_battles, parallel)
    seed = kwargs.pop("seed")
    procs = {}
    for i, share in enumerate(shares):
        if share == 0:
            continue
        worker_kwargs = dict(kwargs, num_battles=share, seed=None if seed is None else seed + 1000 * i)
        procs[i] = ctx.Process(target=_worker, args=(i, worker_kwargs, server_url, messages, log_level), daemon=True)
        procs[i].start()
    pending = set(procs)
    try:
        while pending:
            try:
                kind, index, payload = messages.get(timeout=1.0)
            except queue.Empty:
                for i in list(pending):
                    if not procs[i].is_alive() and messages.empty():
                        summary.worker_failures.append(f"worker {i} exited with code {procs[i].exitcode}")
                        pending.discard(i)
                continue
            if kind == "progress":
                bar.update(payload)
            elif kind == "done":
                summary.battles += payload[0]
                summary.write_errors += payload[1]
                summary.battle_timeouts += payload[2]
                summary.abandoned += payload[3]
                pending.discard(index)
            else:
                summary.worker_failures.append(f"worker {index}: {payload}")
                pending.discard(index)
    finally:
        for proc in procs.values():
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=10)


def generate(
    player: str,
    opponent: Optional[str],
    battle_format: str,
    num_battles: int,
    output_dir,
    team_set: str = "builtin",
    parallel: int = 1,
    server_url: Optional[str] = None,
    concurrent: int = 5,
    timeout_s: float = 120.0,
    battle_timeout_s: Optional[float] = 300.0,
    seed: Optional[int] = None,
    show_progress: bool = True,
    log_level: Optional[str] = None,
) -> GenerationSummary:
    """Play and record ``num_battles`` battles of ``player`` vs ``opponent`` (default: itself).

    ``parallel == 1`` with ``server_url`` plays in this process on that server; otherwise
    ``parallel`` worker processes (spawned) each play their share, on ``server_url`` or on
    their own local server (``log_level``: a ``--log_level`` value each worker applies). Bad
    input raises :class:`MetamonError` before anything starts; losing the server in this
    process raises :class:`~metamon.battles.ConnectionLostError` (a worker reports it in
    ``worker_failures``).
    """
    opponent = opponent or player
    if num_battles < 1 or concurrent < 1 or parallel < 1:
        raise MetamonError(f"num_battles, concurrent and parallel must be at least 1 "
                           f"(got {num_battles}, {concurrent}, {parallel})")
    if not timeout_s > 0 or (battle_timeout_s is not None and not battle_timeout_s > 0):
        raise MetamonError(f"timeout and battle_timeout must be positive seconds "
                           f"(got {timeout_s}, {battle_timeout_s})")
    check_format(battle_format)
    check_spec(player), check_spec(opponent)
    get_metamon_teams(battle_format, team_set)  # fails early on a missing team set
    if server_url is not None:
        check_server(server_url)
    if Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise MetamonError(f"--output_dir {output_dir} is a file, not a folder")
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MetamonError(f"--output_dir {output_dir} cannot be created: {error.strerror or error}") from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise MetamonError(f"--output_dir {output_dir} is not writable (permission denied)")

    summary = GenerationSummary(num_battles, count_trajectory_files(output_dir, battle_format), timeout_s,
                                battle_timeout_s)
    kwargs = dict(player=player, opponent=opponent, battle_format=battle_format, output_dir=str(output_dir),
                  team_set=team_set, concurrent=concurrent, timeout_s=timeout_s,
                  battle_timeout_s=battle_timeout_s, seed=seed)
    start = time.monotonic()
    with tqdm(total=num_battles, desc=f"{player} vs {opponent}", unit="battle", disable=not show_progress) as bar:
        try:
            if parallel == 1 and server_url is not None:
                records, errors, timed_out, abandoned = play_recorded_battles(
                    config=server_configuration(server_url), num_battles=num_battles, progress=bar.update, **kwargs
                )
                summary.battles += records
                summary.write_errors += errors
                summary.battle_timeouts += timed_out
                summary.abandoned += abandoned
            else:
                _run_workers(kwargs, num_battles, parallel, server_url, bar, summary, log_level)
        finally:
            summary.seconds = time.monotonic() - start
    return summary


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------
def build_parser(prog: str = "python -m metamon.data.generate", **defaults) -> argparse.ArgumentParser:
    """The command-line parser; ``defaults`` override flag defaults (a default for
    ``output_dir`` makes that flag optional)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--player", "--model", dest="player", required=True,
                        help="player spec: baseline name, package.module.Class, run:DIR@EPOCH or a "
                             "published model (pretrained:NAME@EPOCH, or NAME alone as metamon's scripts write it)")
    parser.add_argument("--opponent", default=None, help="player spec (default: --player)")
    parser.add_argument("--battle_format", default="gen1ou")
    parser.add_argument("--num_battles", type=int, default=100)
    parser.add_argument("--team_set", default="builtin", help="team set for non-random formats")
    parser.add_argument("--output_dir", required="output_dir" not in defaults,
                        help="files go to OUTPUT_DIR/<battle_format>/")
    parser.add_argument("--parallel", "--parallel_instances", dest="parallel", type=int, default=1,
                        help="worker processes (each starts its own server unless --server_url)")
    parser.add_argument("--server_url", default=None, help="use this running server (host:port)")
    parser.add_argument("--concurrent", type=int, default=5, help="battles played at once per worker")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds without a finished battle before a batch is abandoned")
    parser.add_argument("--battle_timeout", type=float, default=300.0,
                        help="seconds after a player's first decision before it forfeits a battle still running")
    parser.add_argument("--seed", type=int, default=None, help="seeds usernames, team draws and baselines")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    add_log_level_argument(parser)
    parser.set_defaults(**defaults)
    return parser


def main(argv: Optional[Sequence[str]] = None, parser: Optional[argparse.ArgumentParser] = None) -> int:
    args = (parser or build_parser()).parse_args(argv)
    configure_logging(args.log_level)
    opponent = args.opponent or args.player
    try:
        summary = generate(
            args.player, opponent, args.battle_format, args.num_battles, Path(args.output_dir).expanduser(),
            team_set=args.team_set, parallel=args.parallel, server_url=args.server_url,
            concurrent=args.concurrent, timeout_s=args.timeout, battle_timeout_s=args.battle_timeout, seed=args.seed,
            show_progress=not args.no_progress, log_level=args.log_level,
        )
    except ConnectionLostError as error:
        print(f"error: {error}\nbattles that finished before are saved; re-run to add more", file=sys.stderr)
        return 1
    except (MetamonError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: battles that finished are saved; re-run to add more", file=sys.stderr)
        return 130
    print(summary.report(args.player, opponent))
    return 0 if summary.finished and not summary.worker_failures else 1


if __name__ == "__main__":
    sys.exit(main())
