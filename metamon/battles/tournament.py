"""Tournaments: matchups between player specs played on Showdown servers, in parallel, one
record per unique battle, resumable. Shared by self-play tournaments and PSRO payoff tables.

Python::

    from metamon.battles.tournament import round_robin, play_tournament
    matchups = round_robin(["GymLeader", "Grunt", "run:runs/x@4"], n_battles=200)
    report = play_tournament(matchups, "out/tournament_results.jsonl", "gen1ou",
                             team_set="competitive", parallel=4)   # or server_url="127.0.0.1:8000"
    print(report.report())

* :class:`Matchup` ``(player, opponent, n_battles)``: player spec strings (kept in their
  canonical form, ``str(PlayerSpec.parse(s))``) and the number of battles wanted between them.
  A matchup is an *unordered* pair: the sides alternate from chunk to chunk (who challenges),
  and its battles are counted in either orientation.
* :func:`play_matchups` plays ``n_battles`` of every matchup and yields a
  :class:`ChunkOutcome` per chunk as it finishes: the records of the chunk's finished battles
  (format in :mod:`metamon.battles.tournament_file`) and the number that errored. Battles run in
  chunks of ``chunk_size``, each chunk with two fresh players, ``max_concurrent`` battles at
  once; chunks of all matchups are interleaved and spread over ``parallel`` worker processes,
  each with its own local server (or all on ``server_url``; see
  :mod:`metamon.battles.server_pool`). A worker keeps one
  :class:`~metamon.battles.spec.PlayerFactory`, so a trained agent is loaded once per worker.
* :func:`play_tournament` is the resumable version on a results file: it counts the unique
  battles already in the file per unordered pair, plays only the missing ones and appends each
  chunk's records as soon as the chunk ends (a kill loses at most the chunks in flight). Errored
  battles (a stalled chunk, a server problem) are counted in the :class:`TournamentReport` and
  never written, so re-running plays them again.

Errors: a chunk that stalls (no battle finishes for ``timeout_s``) has its open battles
forfeited and counted as errors (:func:`~metamon.battles.engine.play_battles`); a chunk whose
worker raises counts all its battles as errors and retires that worker.
"""

from __future__ import annotations

import functools
import itertools
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from tqdm import tqdm

from metamon.battles.engine import play_battles
from metamon.battles.players import close_players
from metamon.battles.server_pool import OpenWorker, run_on_servers
from metamon.battles.spec import PlayerFactory, PlayerSpec, check_spec, resolve_spec
from metamon.battles.tournament_file import ResultsFile, pair_counts, pair_key
from metamon.errors import MetamonError
from metamon.formats import check_format
from metamon.server import check_server, parse_server_url, server_configuration, unique_username
from metamon.teams import get_metamon_teams

__all__ = [
    "Matchup",
    "Chunk",
    "ChunkResult",
    "ChunkOutcome",
    "MatchupReport",
    "TournamentReport",
    "ShowdownChunkPlayer",
    "canonical_spec",
    "round_robin",
    "plan_chunks",
    "play_matchups",
    "play_tournament",
]

_RESULT_WORDS = {"win": "win", "loss": "loss", "tie": "draw"}
_SEEDED_KINDS = ("baseline", "class")  # builders that take a ``seed`` keyword (make_player)


def canonical_spec(spec: str) -> str:
    """``str(resolve_spec(spec))``: one spelling per player ("baseline:Grunt" -> "Grunt",
    a published model's bare name "SyntheticRLV2" -> "pretrained:SyntheticRLV2")."""
    if not isinstance(spec, str):
        raise MetamonError(f"a tournament player must be a spec string, got {spec!r}")
    return str(resolve_spec(spec))


@dataclass(frozen=True)
class Matchup:
    """``n_battles`` (>= 1) battles between two different players (canonical spec strings)."""

    player: str
    opponent: str
    n_battles: int

    def __post_init__(self):
        object.__setattr__(self, "player", canonical_spec(self.player))
        object.__setattr__(self, "opponent", canonical_spec(self.opponent))
        if self.player == self.opponent:
            raise MetamonError(f"matchup of {self.player!r} against itself: a self-match says nothing about "
                               "ratings or payoffs")
        if not isinstance(self.n_battles, int) or self.n_battles < 1:
            raise MetamonError(f"matchup {self.player} vs {self.opponent}: n_battles must be a positive integer, "
                               f"got {self.n_battles!r}")

    @property
    def pair(self) -> Tuple[str, str]:
        """The unordered pair (sorted)."""
        return pair_key(self.player, self.opponent)


def round_robin(specs: Sequence[str], n_battles: int) -> List[Matchup]:
    """Every unordered pair of ``specs`` once (in ``itertools.combinations`` order), ``n_battles``
    battles each. Two specs with the same canonical form are an error."""
    canonical = [canonical_spec(s) for s in specs]
    if len(set(canonical)) != len(canonical):
        raise MetamonError(f"players named twice: {sorted(s for s in set(canonical) if canonical.count(s) > 1)}")
    if len(canonical) < 2:
        raise MetamonError(f"a round robin needs at least two players, got {canonical}")
    return [Matchup(a, b, n_battles) for a, b in itertools.combinations(canonical, 2)]


@dataclass(frozen=True)
class Chunk:
    """One worker task: ``n_battles`` of ``player`` (challenger) vs ``opponent``, for
    ``matchups[matchup]``; ``seed`` seeds usernames and seedable players."""

    matchup: int
    player: str
    opponent: str
    n_battles: int
    seed: int


@dataclass(frozen=True)
class ChunkResult:
    """What a worker returns: the records of the finished battles and how many errored."""

    records: Tuple[Dict[str, Any], ...]
    errors: int


class ChunkOutcome(NamedTuple):
    """A finished chunk of ``matchups[matchup]``: its ``records``, ``errors`` (battles that did
    not finish) and ``failure`` (the worker's error message when the whole chunk failed)."""

    matchup: int
    chunk: Chunk
    records: Tuple[Dict[str, Any], ...]
    errors: int
    failure: Optional[str]


def plan_chunks(matchups: Sequence[Matchup], chunk_size: int, seed: Any = 0) -> List[Chunk]:
    """Split every matchup into chunks of at most ``chunk_size`` battles, sides alternating
    (even chunks: ``player`` challenges), chunks of all matchups interleaved (chunk 0 of each,
    then chunk 1, ...) so every pair gets battles early."""
    if chunk_size < 1:
        raise MetamonError(f"chunk_size must be at least 1, got {chunk_size}")
    rng = random.Random(str(seed))
    per_matchup = []
    for m, matchup in enumerate(matchups):
        sizes = [min(chunk_size, matchup.n_battles - start) for start in range(0, matchup.n_battles, chunk_size)]
        sides = [(matchup.player, matchup.opponent), (matchup.opponent, matchup.player)]
        per_matchup.append([(m, *sides[k % 2], size) for k, size in enumerate(sizes)])
    ordered = [c for group in itertools.zip_longest(*per_matchup) for c in group if c is not None]
    return [Chunk(m, a, b, size, rng.randrange(2**31)) for m, a, b, size in ordered]


class ShowdownChunkPlayer:
    """The default worker (see :mod:`metamon.battles.server_pool`): plays chunks on the server
    at ``server_url`` with one :class:`PlayerFactory`. Battle ids are
    ``{nonce}-{port}-{battle tag}`` with a fresh random nonce per opened worker."""

    def __init__(self, server_url: str, *, battle_format: str, team_set: Optional[str], max_concurrent: int,
                 timeout_s: float, device: str = "cpu", sample: bool = True):
        self.battle_format = battle_format
        self.timeout_s = timeout_s
        self.id_prefix = f"{uuid.uuid4().hex[:12]}-{parse_server_url(server_url)[1]}"
        self.factory = PlayerFactory(battle_format, server_configuration=server_configuration(server_url),
                                     team_set=team_set, max_concurrent_battles=max_concurrent, sample=sample,
                                     device=device)

    def __enter__(self) -> "ShowdownChunkPlayer":
        return self

    def __exit__(self, *exc) -> None:
        self.factory.close()

    def _build(self, spec: str, rng: random.Random, taken: str = ""):
        parsed = PlayerSpec.parse(spec)
        name = unique_username(parsed.label, rng)
        while name == taken:
            name = unique_username(parsed.label, rng)
        kwargs = {"seed": rng.randrange(2**31)} if parsed.kind in _SEEDED_KINDS else {}
        return self.factory.build(parsed, username=name, **kwargs)

    def __call__(self, chunk: Chunk, progress: Callable[[int], None]) -> ChunkResult:
        rng = random.Random(chunk.seed)
        players = []
        try:
            players.append(self._build(chunk.player, rng))
            players.append(self._build(chunk.opponent, rng, taken=players[0].username))
            results = play_battles(players[0], players[1], chunk.n_battles, self.timeout_s, progress=progress)
        finally:
            close_players(*players)
        records = tuple(
            {"battle_id": f"{self.id_prefix}-{r.battle_tag}", "player": chunk.player, "opponent": chunk.opponent,
             "result": _RESULT_WORDS[r.outcome], "turns": r.turns, "format": self.battle_format}
            for r in results if r.outcome != "error"
        )
        return ChunkResult(records, chunk.n_battles - len(records))


def play_matchups(
    matchups: Sequence[Matchup],
    battle_format: str,
    *,
    team_set: Optional[str] = "builtin",
    parallel: int = 1,
    server_url: Optional[str] = None,
    max_concurrent: int = 10,
    chunk_size: Optional[int] = None,
    timeout_s: float = 120.0,
    seed: Any = 0,
    device: str = "cpu",
    sample: bool = True,
    progress: Optional[Callable[[int], None]] = None,
    open_worker: Optional[OpenWorker] = None,
) -> Iterator[ChunkOutcome]:
    """Play every matchup's ``n_battles`` (see the module docstring) and yield a
    :class:`ChunkOutcome` per chunk as it finishes. ``chunk_size`` defaults to
    ``2 * max_concurrent``; ``progress(k)``: ``k`` more battles finished. ``open_worker``
    replaces the Showdown worker (:class:`ShowdownChunkPlayer`; tests, other back-ends).
    Bad input raises :class:`MetamonError` before anything starts."""
    if max_concurrent < 1 or parallel < 1:
        raise MetamonError(f"max_concurrent and parallel must be at least 1, got {max_concurrent}, {parallel}")
    if not timeout_s > 0:
        raise MetamonError(f"timeout_s must be positive seconds, got {timeout_s}")
    pairs = [m.pair for m in matchups]
    if len(set(pairs)) != len(pairs):
        raise MetamonError(f"a pair of players appears in more than one matchup: "
                           f"{sorted({p for p in pairs if pairs.count(p) > 1})}")
    check_format(battle_format)
    for spec in sorted({s for m in matchups for s in (m.player, m.opponent)}):
        check_spec(spec)
    if team_set is not None:
        get_metamon_teams(battle_format, team_set)  # fails early on a missing team set
    if open_worker is None:
        if server_url is not None:
            check_server(server_url)
        open_worker = functools.partial(ShowdownChunkPlayer, battle_format=battle_format, team_set=team_set,
                                        max_concurrent=max_concurrent, timeout_s=timeout_s, device=device,
                                        sample=sample)
    chunks = plan_chunks(matchups, chunk_size or 2 * max_concurrent, seed)
    return _outcomes(open_worker, chunks, parallel, server_url, progress)


def _outcomes(open_worker: OpenWorker, chunks: List[Chunk], parallel: int, server_url: Optional[str],
              progress: Optional[Callable[[int], None]]) -> Iterator[ChunkOutcome]:
    for outcome in run_on_servers(open_worker, chunks, parallel=parallel, server_url=server_url, progress=progress):
        chunk = chunks[outcome.index]
        if outcome.error is not None:
            yield ChunkOutcome(chunk.matchup, chunk, (), chunk.n_battles, outcome.error)
        else:
            yield ChunkOutcome(chunk.matchup, chunk, tuple(outcome.result.records), outcome.result.errors, None)


# --------------------------------------------------------------------------- resumable file


@dataclass
class MatchupReport:
    """One matchup of a :func:`play_tournament` run: battles ``existing`` in the file before,
    ``played`` (finished and written) and ``errors`` (not finished) in this run, and the
    messages of chunks that failed as a whole."""

    matchup: Matchup
    existing: int
    played: int = 0
    errors: int = 0
    failures: List[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        """Battles this run had to play."""
        return max(0, self.matchup.n_battles - self.existing)

    @property
    def total(self) -> int:
        """Unique battles in the file now."""
        return self.existing + self.played


@dataclass
class TournamentReport:
    """What :func:`play_tournament` did, per matchup (same order as the matchups)."""

    matchups: List[MatchupReport]
    seconds: float = 0.0

    @property
    def played(self) -> int:
        return sum(m.played for m in self.matchups)

    @property
    def errors(self) -> int:
        return sum(m.errors for m in self.matchups)

    @property
    def missing(self) -> int:
        return sum(m.missing for m in self.matchups)

    def report(self) -> str:
        lines = [f"{self.played} of {self.missing} missing battles played in {self.seconds:.1f} s, "
                 f"{self.errors} errored"]
        for m in self.matchups:
            line = (f"  {m.matchup.player} vs {m.matchup.opponent}: {m.total} of {m.matchup.n_battles} "
                    f"({m.existing} already there, {m.played} played, {m.errors} errored)")
            lines.append(line + (f"; failures: {m.failures[:2]}" if m.failures else ""))
        if self.errors:
            lines.append("errored battles were not written: run again to play them")
        return "\n".join(lines)


def play_tournament(
    matchups: Sequence[Matchup],
    results_path: Union[str, Path],
    battle_format: str,
    *,
    seed: Any = 0,
    show_progress: bool = True,
    **kwargs,
) -> TournamentReport:
    """Play what is missing of ``matchups`` and append it to the results file ``results_path``.

    The unique battles already in the file are counted per unordered pair; a matchup plays
    ``n_battles`` minus that count (nothing when the file already has enough). Each finished
    chunk is appended at once. A file holding battles of another format is an error (one
    tournament, one format). ``kwargs`` go to :func:`play_matchups`."""
    results = ResultsFile(results_path)
    existing_records = results.unique()
    formats = sorted({r["format"] for r in existing_records} - {battle_format})
    if formats:
        raise MetamonError(f"{results.path} holds battles in {formats}, not only {battle_format}; "
                           "use another results file for another format")
    counts = pair_counts(existing_records)
    report = TournamentReport([MatchupReport(m, counts.get(m.pair, 0)) for m in matchups])
    todo = [(k, m) for k, m in enumerate(report.matchups) if m.missing > 0]
    start = time.monotonic()
    if todo:
        to_play = [Matchup(m.matchup.player, m.matchup.opponent, m.missing) for _, m in todo]
        with tqdm(total=sum(m.n_battles for m in to_play), unit="battle", desc="tournament",
                  disable=not show_progress) as bar:
            outcomes = play_matchups(to_play, battle_format, seed=f"{seed}/{len(existing_records)}",
                                     progress=bar.update, **kwargs)
            for outcome in outcomes:
                target = report.matchups[todo[outcome.matchup][0]]
                target.played += results.append(outcome.records)
                target.errors += outcome.errors
                if outcome.failure is not None:
                    target.failures.append(outcome.failure)
                if outcome.errors:
                    bar.set_postfix(errors=report.errors)
    report.seconds = time.monotonic() - start
    return report
