"""The battle engine: poke-env players battling each other on a Showdown server.

The engine knows players, not where they come from (a heuristic baseline, a trained policy or
any poke-env ``Player``); ``metamon.baselines``, ``metamon.data.generate`` and
``metamon.rl.evaluate`` build the players and call it::

    from metamon.battles import new_player, play_battles, summarize, close_players
    player = new_player(MyPlayer, "gen9randombattle", server_configuration=config)
    opponent = new_player(RandomPlayer, "gen9randombattle", server_configuration=config)
    results = play_battles(player, opponent, n_battles=50, timeout_s=120)   # List[BattleResult]
    print(summarize(results)["win_rate"])
    close_players(player, opponent)

Players are named by :class:`~metamon.battles.spec.PlayerSpec` strings (``"GymLeader"``,
``"run:runs/x@4"``, ...) and built by a :class:`~metamon.battles.spec.PlayerFactory`.

Modules: :mod:`~metamon.battles.spec` (specs and the factory),
:mod:`~metamon.battles.players` (open / close players),
:mod:`~metamon.battles.engine` (play and wait), :mod:`~metamon.battles.results` (outcomes and
their summary), :mod:`~metamon.battles.tournament` (matchups played in parallel over servers,
one record per unique battle, resumable; its file format in
:mod:`~metamon.battles.tournament_file`), :mod:`~metamon.battles.server_pool` (tasks on K worker
processes, each with its own local server).
"""

from __future__ import annotations

from metamon.battles.engine import ConnectionLostError, play_battles, wait_for_battles
from metamon.battles.players import close_player, close_players, connection_closed, new_player
from metamon.battles.results import OUTCOMES, BattleResult, battle_results, new_finished, summarize
from metamon.battles.spec import PlayerFactory, PlayerSpec, check_spec, register_player_kind, resolve_spec

__all__ = [
    "OUTCOMES",
    "BattleResult",
    "ConnectionLostError",
    "PlayerFactory",
    "PlayerSpec",
    "battle_results",
    "check_spec",
    "close_player",
    "close_players",
    "connection_closed",
    "new_finished",
    "new_player",
    "play_battles",
    "register_player_kind",
    "resolve_spec",
    "summarize",
    "wait_for_battles",
]
