"""Opening and closing poke-env players for a run of battles.

* :func:`new_player` — instantiate any poke-env ``Player`` class under a fresh Showdown
  username (``metamon.server.unique_username``), e.g.
  ``new_player(RandomPlayer, "gen9randombattle", server_configuration=config)``.
* :func:`close_players` — close the players' websocket connections and end the message handlers
  they leave pending (call once a run is over); :func:`close_player` does it for one player and
  raises when closing fails.
* :func:`connection_closed` — whether a player's connection to the server has closed (the
  server stopped or crashed, or :func:`close_players` closed it).

All are called from a thread that is not ``POKE_LOOP``. Players made by :func:`new_player` log
at the level chosen with :func:`metamon.logs.configure_logging` (quiet by default).
"""

from __future__ import annotations

import asyncio
from typing import Optional, Type

from poke_env.concurrency import POKE_LOOP
from poke_env.player import Player
from poke_env.ps_client import AccountConfiguration

from metamon.logs import apply_poke_env_level
from metamon.server import unique_username

__all__ = ["new_player", "close_player", "close_players", "connection_closed"]


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
    player = cls(
        account_configuration=AccountConfiguration(name, None),
        battle_format=battle_format,
        max_concurrent_battles=max_concurrent_battles,
        team=team,
        **kwargs,
    )
    apply_poke_env_level(player.logger)
    return player


def connection_closed(player: Player) -> bool:
    """True once ``player``'s websocket connection to the server has closed.

    poke-env 0.16.1 runs each client's ``listen()`` coroutine on ``POKE_LOOP`` and keeps its
    ``concurrent.futures.Future`` as ``ps_client._listening_coroutine``; ``listen()`` returns as
    soon as the connection closes (the server stopped, crashed or dropped it), so a finished
    future means a closed connection. A player that never started listening counts as open.
    """
    listening = getattr(player.ps_client, "_listening_coroutine", None)
    return listening is not None and listening.done()


async def _close(player: Player, timeout_s: float) -> None:
    """Close ``player``'s connection, then cancel the message handlers it left pending.

    poke-env handles each server message in a task (kept in ``ps_client._active_tasks``); a
    handler waiting for a decision or a battle lock when the run ends stays pending for ever.
    Left alone, such a task is garbage-collected with its player and asyncio prints "Task was
    destroyed but it is pending!". The player's logger is disabled first: poke-env logs every
    cancelled handler at CRITICAL ("CancelledError intercepted").
    """
    try:
        await player.ps_client.stop_listening()
    finally:
        pending = [task for task in list(player.ps_client._active_tasks) if not task.done()]
        if pending:
            player.logger.disabled = True  # the player is done: only its leftovers are cancelled below
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=timeout_s)


def close_player(player: Player, timeout_s: float = 10.0) -> None:
    """Close ``player``'s websocket connection and end its pending message handlers (see
    :func:`_close`); raises what closing raised (e.g. a connection that never opened)."""
    future = asyncio.run_coroutine_threadsafe(_close(player, timeout_s), POKE_LOOP)
    try:
        future.result(timeout=2 * timeout_s)
    except BaseException:
        future.cancel()
        raise


def close_players(*players: Player, timeout_s: float = 10.0) -> None:
    """Close the players' websocket connections and end their pending message handlers; a
    connection that is already gone is closed enough (failures are ignored)."""
    for player in players:
        try:
            close_player(player, timeout_s)
        except Exception:  # noqa: BLE001 - a connection that is already gone is closed enough
            pass
