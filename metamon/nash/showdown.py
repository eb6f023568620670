"""A PSRO payoff evaluator that plays real Showdown battles: :class:`ShowdownEvaluator`.

It implements :class:`~metamon.nash.psro.PayoffEvaluator` on the tournament engine
(:func:`metamon.battles.tournament.play_matchups`): each request ``(a, b, missing)`` becomes a
matchup between the members' player specs, played in parallel over servers (``parallel``
workers with their own local servers, or ``server_url``), and every finished chunk is yielded
as battle records for :meth:`PayoffTable.add_records <metamon.nash.payoff.PayoffTable.add_records>`::

    {"battle_id": "5f0c2a9e41d7-8123-battle-gen1ou-17",   # globally unique (nonce-port-tag)
     "player": "GymLeader", "opponent": "br_1",            # member NAMES (not specs)
     "result": "win" | "loss" | "draw",                    # from ``player``'s side
     "player_spec": "GymLeader", "opponent_spec": "run:psro/br_1@8",
     "turns": 31, "format": "gen1ou"}

Errored battles are not yielded (the loop sees the pair short and warns; the next call asks
for them again). With ``results_path`` every chunk is also appended, with spec strings as the
players, to a tournament results file (:mod:`metamon.battles.tournament_file`), so
``scripts/calculate_elo.py`` can rate the population from the same battles.

Usage::

    evaluator = ShowdownEvaluator("gen1ou", team_set="competitive", parallel=4)
    for chunk in evaluator.play(population, table.pairs_needed(battles_per_pair=50)):
        table.add_records(chunk)                    # what run_psro_loop does, saving after each
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from metamon.battles.server_pool import OpenWorker
from metamon.battles.tournament import Matchup, play_matchups
from metamon.battles.tournament_file import ResultsFile
from metamon.errors import MetamonError
from metamon.nash.errors import NashError
from metamon.nash.payoff import PairRequest
from metamon.nash.population import Population

__all__ = ["ShowdownEvaluator"]

logger = logging.getLogger(__name__)


class ShowdownEvaluator:
    """Plays the requested pairs on Showdown (see the module docstring).

    Args:
        battle_format: the format of every battle.
        team_set: the team set players draw from (None in random-battle formats).
        parallel: worker processes, each with its own local server unless ``server_url``.
        server_url: a running server (``host:port``) for every worker.
        max_concurrent: battles at once per chunk; ``chunk_size`` battles per chunk (default
            ``2 * max_concurrent``); ``timeout_s``: a chunk with no finished battle for this
            long is stopped (its open battles error).
        device, sample: for trained players (``run:`` specs).
        seed: seeds usernames and seedable players; call ``k`` of :meth:`play` uses ``(seed, k)``.
        results_path: also append every record (players as spec strings) to this file.
        open_worker: replaces the Showdown worker (tests); see :func:`play_matchups`.
    """

    def __init__(self, battle_format: str, *, team_set: Optional[str] = "builtin", parallel: int = 1,
                 server_url: Optional[str] = None, max_concurrent: int = 10, chunk_size: Optional[int] = None,
                 timeout_s: float = 120.0, device: str = "cpu", sample: bool = True, seed: int = 0,
                 results_path: Union[str, os.PathLike, None] = None, open_worker: Optional[OpenWorker] = None):
        self.battle_format = battle_format
        self.options: Dict[str, Any] = dict(team_set=team_set, parallel=parallel, server_url=server_url,
                                            max_concurrent=max_concurrent, chunk_size=chunk_size,
                                            timeout_s=timeout_s, device=device, sample=sample,
                                            open_worker=open_worker)
        self.seed = seed
        self.results = ResultsFile(results_path) if results_path is not None else None
        self._calls = 0

    def play(self, population: Population, requests: Sequence[PairRequest]) -> Iterator[List[Dict[str, Any]]]:
        """For each request play ``missing`` battles between members ``a`` and ``b``; yield the
        records of every finished chunk (member names as players)."""
        matchups: List[Matchup] = []
        names: List[Mapping[str, str]] = []
        for request in requests:
            if request.missing < 1:
                continue
            a, b = population[request.a], population[request.b]
            try:
                matchup = Matchup(a.spec, b.spec, request.missing)
            except MetamonError as error:
                raise NashError(f"members {a.name!r} and {b.name!r} cannot battle: {error}") from None
            matchups.append(matchup)
            names.append({matchup.player: a.name, matchup.opponent: b.name})
        if not matchups:
            return
        seed = f"{self.seed}/{self._calls}"
        self._calls += 1
        for outcome in play_matchups(matchups, self.battle_format, seed=seed, **self.options):
            if outcome.failure is not None:
                logger.warning("%s vs %s: a chunk of %d battles failed: %s", outcome.chunk.player,
                               outcome.chunk.opponent, outcome.chunk.n_battles, outcome.failure)
            elif outcome.errors:
                logger.warning("%s vs %s: %d battles errored", outcome.chunk.player, outcome.chunk.opponent,
                               outcome.errors)
            if not outcome.records:
                continue
            if self.results is not None:
                self.results.append(outcome.records)
            to_name = names[outcome.matchup]
            yield [dict(r, player=to_name[r["player"]], opponent=to_name[r["opponent"]],
                        player_spec=r["player"], opponent_spec=r["opponent"]) for r in outcome.records]
