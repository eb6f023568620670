"""A poke-env ``Player`` whose decisions are made by code outside poke-env's event loop.

poke-env 0.16.1 runs every player on one background asyncio loop (``POKE_LOOP``) and asks a
player for an order by calling ``choose_move(battle)``, which may return an awaitable. This
player hands each request to a thread-safe queue as a :class:`Decision` and awaits a future that
the consumer (a gymnasium ``step`` on another thread) resolves with :meth:`Decision.answer`.
When a battle ends it queues :class:`Finished`. The consumer therefore sees, per battle, the
sequence ``Decision* Finished`` in protocol order and never touches the event loop itself.

While a decision is pending the server waits for us, so the ``Battle`` object does not change
and may be read from the consumer's thread.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from dataclasses import dataclass, field

from poke_env.battle import AbstractBattle
from poke_env.concurrency import POKE_LOOP
from poke_env.player import BattleOrder, Player

from metamon.logs import apply_poke_env_level

__all__ = ["Decision", "Finished", "ServerPopup", "ExternalDecisionPlayer", "forward_popups"]


@dataclass
class Decision:
    """The server asks for an order in ``battle``; call :meth:`answer` exactly once."""

    battle: AbstractBattle
    future: asyncio.Future = field(repr=False)

    def answer(self, order: BattleOrder) -> None:
        POKE_LOOP.call_soon_threadsafe(_resolve, self.future, order)


@dataclass
class Finished:
    """``battle`` is over (won, lost or tied)."""

    battle: AbstractBattle


@dataclass
class ServerPopup:
    """The server showed ``username`` a popup (e.g. a rejected team or challenge)."""

    username: str
    message: str

    @property
    def about_a_battle_room(self) -> bool:
        """True for popups about a command sent to a battle room, e.g. a late ``/choose`` for a
        battle that a forfeit already ended ("... to the room "battle-gen1ou-12" but it failed
        because you were not in that room"): they never mean that a new battle was refused."""
        return 'to the room "battle-' in self.message


class _PopupForwarder(logging.Handler):
    # poke-env only logs popups ("Popup message received: ..."); turn them into events.
    def __init__(self, events: queue.SimpleQueue, username: str):
        super().__init__(level=logging.WARNING)
        self.events, self.username = events, username

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("Popup message received"):
            text = str(record.args[0]) if record.args else record.getMessage()
            self.events.put(ServerPopup(self.username, text.replace("|popup|", "").replace("||", "\n").strip()))


def forward_popups(player: Player, events: queue.SimpleQueue) -> None:
    """Queue a :class:`ServerPopup` on ``events`` whenever the server shows ``player`` a popup.
    The player's own log output follows ``--log_level`` (:func:`metamon.logs.apply_poke_env_level`:
    popups, logged at WARNING, still reach the forwarder when poke-env's output is quieter)."""
    apply_poke_env_level(player.logger)
    player.logger.addHandler(_PopupForwarder(events, player.username))


def _resolve(future: asyncio.Future, order: BattleOrder) -> None:
    if not future.done():
        future.set_result(order)


class ExternalDecisionPlayer(Player):
    """Queues ``Decision``/``Finished`` events on ``self.events`` (a ``queue.SimpleQueue``: its
    ``put`` and ``get`` are implemented in C, the cheapest hand-off between the event loop and
    the consumer's thread; one happens per decision)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.events: "queue.SimpleQueue[Decision | Finished | ServerPopup]" = queue.SimpleQueue()
        forward_popups(self, self.events)

    async def choose_move(self, battle: AbstractBattle) -> BattleOrder:
        future = asyncio.get_running_loop().create_future()
        self.events.put(Decision(battle, future))
        return await future

    def _battle_finished_callback(self, battle: AbstractBattle) -> None:
        self.events.put(Finished(battle))
