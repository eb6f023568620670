"""Opening and closing poke-env players for a run of battles.

* :func:`new_player` — instantiate any poke-env ``Player`` class under a fresh Showdown
  username (``metamon.server.unique_username``), e.g.
  ``new_player(RandomPlayer, "gen9randombattle", server_configuration=config)``.
* :func:`close_players` — close the players' websocket connections (call once a run is over).

Both are called from a thread that is not ``POKE_LOOP``.
"""

from __future__ import annotations

import asyncio
from typing import Optional, Type

from poke_env.concurrency import POKE_LOOP
from poke_env.player import Player
from poke_env.ps_client import AccountConfiguration

from metamon.server import unique_username

__all__ = ["new_player", "close_players"]


def new_player(
    cls: Type[Player],
    battle_format: str,
    *,
    server_configuration=None,
    max_concurrent_battles: int = 10,
    team=None,
    username: Optional[str] = None,
    **kwargs,
) -> Player:
    """``cls(...)`` logged in as ``username`` (default: a unique name from the class name),
    playing ``battle_format`` with ``team`` (None for random-battle formats); ``kwargs`` go to
    the constructor unchanged. Without ``server_configuration`` poke-env's default applies."""
    if server_configuration is not None:
        kwargs["server_configuration"] = server_configuration
    name = username or unique_username(cls.__name__)
    return cls(
        account_configuration=AccountConfiguration(name, None),
        battle_format=battle_format,
        max_concurrent_battles=max_concurrent_battles,
        team=team,
        **kwargs,
    )


def close_players(*players: Player, timeout_s: float = 10.0) -> None:
    """Close the players' websocket connections."""
    for player in players:
        future = asyncio.run_coroutine_threadsafe(player.ps_client.stop_listening(), POKE_LOOP)
        try:
            future.result(timeout=timeout_s)
        except Exception:  # noqa: BLE001 - a connection that is already gone is closed enough
            future.cancel()
