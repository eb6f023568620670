"""Playing a run of battles between poke-env players and waiting for it.

* :func:`play_battles` — ``player`` challenges ``opponent`` ``n_battles`` times and returns one
  :class:`~metamon.battles.results.BattleResult` per battle (stuck battles are forfeited).
* :func:`wait_for_battles` — the polling loop under it, shared with runs started some other way
  (e.g. ladder searches): wait for a ``POKE_LOOP`` future, report progress, give up when no
  battle finishes for ``timeout_s`` seconds.

A server that dies is noticed here, once for every tool that plays battles (``compete``,
``generate``, ``evaluate``, validation): when a watched player's connection closes during a run
(:func:`metamon.battles.players.connection_closed`, polled every 0.25 s), the run is cancelled
and :class:`ConnectionLostError` raised at once, instead of waiting out the stall timeout and
reporting the unfinished battles as ordinary errors.

Battles run on poke-env's event loop (``POKE_LOOP``); these functions block the calling thread,
which must not be ``POKE_LOOP``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Callable, List, Optional, Sequence

from poke_env.concurrency import POKE_LOOP
from poke_env.player import Player

from metamon.battles.players import connection_closed
from metamon.battles.results import BattleResult, battle_results, new_finished
from metamon.errors import BattleError

__all__ = ["ConnectionLostError", "wait_for_battles", "play_battles"]

POLL_S = 0.25  # how often the run's progress and the players' connections are checked
CLOSE_GRACE_S = 2.0  # after a failed run: how long to wait for a closing connection to show


class ConnectionLostError(BattleError):
    """A player's connection to the Showdown server closed during a run (the server stopped,
    crashed or dropped it). Battles not finished by then are lost; the message names the player
    and the server, and says how many battles had finished when ``finished`` is known. A command
    line exits with 1 (the run failed; its input was fine)."""

    exit_code = 1

    @classmethod
    def of(cls, player: Player, finished: Optional[int] = None) -> "ConnectionLostError":
        done = "" if finished is None else f", after {finished} finished battle(s)"
        return cls(
            f"the connection of {player.username} to the Showdown server "
            f"({player.ps_client.websocket_url}) closed during the run{done}: the server stopped or "
            f"crashed. Start it again (`python -m metamon.server start`) and re-run."
        )


def _closed_player(players: Sequence[Player]) -> Optional[Player]:
    return next((p for p in players if connection_closed(p)), None)


def _forfeit(player: Player, battle_tags: Sequence[str], timeout_s: float = 5.0) -> None:
    """Forfeit unfinished battles so the server ends them instead of waiting forever."""

    async def send_all():
        for tag in battle_tags:
            await player.ps_client.send_message("/forfeit", tag)

    future = asyncio.run_coroutine_threadsafe(send_all(), POKE_LOOP)
    try:
        future.result(timeout=timeout_s)
    except Exception:  # noqa: BLE001 - the results already say these battles errored
        future.cancel()


def wait_for_battles(
    future: concurrent.futures.Future,
    player: Player,
    count_finished: Callable[[], int],
    timeout_s: float,
    progress: Optional[Callable[[int], None]] = None,
    *,
    watch: Sequence[Player] = (),
) -> None:
    """Poll ``future`` (battles running on ``POKE_LOOP``) until it completes.

    ``count_finished()`` returns how many of the run's battles have finished so far;
    ``progress(k)`` (optional) gets the number finished since its previous call. When none
    finishes for ``timeout_s`` seconds the run is cancelled and logged on ``player``'s logger
    (the caller reports the unfinished battles). An exception of the run is logged, not raised,
    unless it comes from a closed connection.

    Raises :class:`ConnectionLostError` (after cancelling the run) as soon as the connection of
    ``player`` or of a player in ``watch`` (e.g. the opponent) to the server closes.
    """
    watched = [player, *watch]
    reported, last_change = 0, time.monotonic()
    while True:
        try:
            future.result(timeout=POLL_S)
            break
        except concurrent.futures.TimeoutError:
            pass
        except Exception as error:  # noqa: BLE001 - the caller reports unfinished battles
            deadline = time.monotonic() + CLOSE_GRACE_S  # a send on a dying connection fails first
            while _closed_player(watched) is None and time.monotonic() < deadline:
                time.sleep(POLL_S / 5)
            closed = _closed_player(watched)
            if closed is not None:
                raise ConnectionLostError.of(closed, count_finished()) from error
            player.logger.error("battles failed: %r", error)
            break
        closed = _closed_player(watched)
        if closed is not None:
            future.cancel()
            raise ConnectionLostError.of(closed, count_finished())
        finished = count_finished()
        if finished > reported:
            if progress is not None:
                progress(finished - reported)
            reported, last_change = finished, time.monotonic()
        elif time.monotonic() - last_change > timeout_s:
            future.cancel()
            player.logger.error("no battle finished for %.0f s: stopping the run", timeout_s)
            break
    finished = count_finished()
    if progress is not None and finished > reported:
        progress(finished - reported)


def play_battles(
    player: Player,
    opponent: Player,
    n_battles: int,
    timeout_s: float = 120.0,
    progress: Optional[Callable[[int], None]] = None,
) -> List[BattleResult]:
    """Play ``n_battles`` of ``player`` against ``opponent`` (concurrency = the players'
    ``max_concurrent_battles``) and return one :class:`BattleResult` per battle, from
    ``player``'s side.

    ``battle_against`` runs on poke-env's event loop (``POKE_LOOP``); this thread polls it.
    When no battle finishes for ``timeout_s`` seconds the run is considered stuck: it is
    cancelled, the battles still open are forfeited and reported as "error", as are battles
    that never started; after such a timeout the two players should not be reused.
    ``progress(k)`` is called with the number of battles that finished since its previous call.
    Raises :class:`ConnectionLostError` within a second when either player's connection to the
    server closes (nothing is forfeited: the server is gone). Call from a thread that is not
    ``POKE_LOOP``.
    """
    if n_battles < 1:
        raise ValueError(f"n_battles must be at least 1, got {n_battles}")
    before = set(player.battles)
    future = asyncio.run_coroutine_threadsafe(player.battle_against(opponent, n_battles=n_battles), POKE_LOOP)
    wait_for_battles(future, player, lambda: new_finished(player, before), timeout_s, progress, watch=[opponent])

    results = battle_results(player, before, n_battles)
    unfinished = [r.battle_tag for r in results if r.outcome == "error" and r.battle_tag is not None]
    if unfinished:
        _forfeit(player, unfinished)
    return results
