"""Record any poke-env player's battles as metamon trajectory files.

``recording_player(Grunt)`` is a subclass of ``Grunt`` that plays exactly like it and, for every
battle, writes one trajectory file from its own point of view (see
:mod:`metamon.data.trajectory_file` for the file format)::

    RecordingGrunt = recording_player(Grunt)
    player = RecordingGrunt(battle_format="gen1ou", team=..., save_trajectories_to="out/")
    # ... battles ... -> out/gen1ou/<id>_Unrated_<player>_vs_<opponent>_<date>_<WIN|LOSS>.json.lz4

What is recorded, per battle:

* at each decision (each call of ``choose_move``; team preview is not a decision of metamon's
  action space and is not recorded): ``UniversalState.from_Battle(battle)`` taken *before* the
  player decides, and the universal index (0..12) of the order it returned,
  ``battle_order_to_action_idx(battle, order)`` (-1 when the order has none, e.g. a default
  order);
* when the battle ends: the final state with action -1.

Invalid choices are recorded explicitly, never inferred from the action values. When Showdown
answers ``[Invalid choice]``, poke-env asks the player again for the same request (same
``rqid`` in ``battle.last_request``), or with a small probability sends ``/choose default``
without asking. So: a ``choose_move`` call for the request that was already answered replaces
the recorded action of that decision by the new one and sets its ``invalid_actions`` flag; an
invalid choice answered by a default order sets the flag and records -1 (what was played is
unknown). ``actions`` therefore always holds what was finally *played*. A player that knows
its own choice was illegal and played a fallback instead (it exposes
``last_decision_was_fallback(battle_tag)``, as :class:`metamon.rl.player.PolicyPlayer` does)
has that decision flagged too.

Per-battle buffers are dropped once the file is written; ``recorded`` keeps one small
:class:`RecordedBattle` summary per written file (call ``recorded.clear()`` to drop them).

Battle timeout (``battle_timeout_s``, off by default): a battle still undecided that many
seconds after the player's first decision in it is forfeited by the player, with an error in
the log naming the battle, and its tag is appended to ``timed_out``. The deadline is checked at
every decision, and an ``async`` ``choose_move`` is only awaited until the deadline (a
coroutine that never returns is cancelled). The forfeiting player answers the pending request
with poke-env's default order (recorded as the missing action -1); the battle then ends normally,
so both sides' files are complete trajectories. A synchronous ``choose_move`` that never returns
blocks poke-env's event loop and cannot be interrupted from inside the process.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Type

from poke_env.battle import AbstractBattle
from poke_env.player import BattleOrder, Player

from metamon.data.trajectory_file import write_battle
from metamon.errors import MetamonError
from metamon.interface import UniversalState, battle_order_to_action_idx, request_id

__all__ = ["RecordedBattle", "recording_player"]

logger = logging.getLogger(__name__)

WRITER = "metamon-gemma recording_player"


@dataclass(frozen=True)
class RecordedBattle:
    """Summary of one written trajectory file."""

    battle_tag: str
    battle_id: str
    result: str  # "win" | "loss" | "tie", from the recording player's side
    turns: int
    decisions: int  # recorded decisions (states minus the final one)
    invalid: int  # decisions whose first choice the server rejected
    path: Path


@dataclass
class _BattleBuffer:
    states: List[dict] = field(default_factory=list)
    actions: List[int] = field(default_factory=list)
    invalid: List[bool] = field(default_factory=list)
    last_rqid: Any = None
    choices: int = 0  # choose_move answers recorded, retries included
    deadline: float = float("inf")  # time.monotonic() after which the battle is forfeited


def recording_player(player_cls: Type[Player]) -> Type[Player]:
    """A subclass of the poke-env ``Player`` class ``player_cls`` that records its battles.

    The subclass takes the extra keyword arguments ``save_trajectories_to`` (a folder; files go
    to ``<folder>/<battle format>/``) and ``battle_timeout_s`` (``None``: no limit; see the
    module docstring), and exposes ``recorded`` (a list of :class:`RecordedBattle`),
    ``record_errors`` (battles whose file could not be written) and ``timed_out`` (tags of the
    battles it forfeited at the timeout). Works with synchronous and ``async`` ``choose_move``.
    """
    if not (isinstance(player_cls, type) and issubclass(player_cls, Player)):
        raise MetamonError(f"recording_player needs a poke-env Player subclass, got {player_cls!r}")

    class RecordingPlayer(player_cls):
        def __init__(self, *args, save_trajectories_to, battle_timeout_s: Optional[float] = None, **kwargs):
            if battle_timeout_s is not None and not battle_timeout_s > 0:
                raise MetamonError(f"battle_timeout_s must be positive or None, got {battle_timeout_s!r}")
            super().__init__(*args, **kwargs)
            self.save_trajectories_to = Path(save_trajectories_to)
            self.battle_timeout_s = battle_timeout_s
            self.recorded: List[RecordedBattle] = []
            self.record_errors: List[str] = []
            self.timed_out: List[str] = []
            self._buffers: Dict[str, _BattleBuffer] = {}

        # -- decisions ---------------------------------------------------------------------
        def choose_move(self, battle: AbstractBattle):
            state = UniversalState.from_Battle(battle).to_dict()
            rqid = request_id(battle)
            buffer = self._buffers.get(battle.battle_tag)
            if buffer is None:
                buffer = self._buffers[battle.battle_tag] = _BattleBuffer()
                if self.battle_timeout_s is not None:
                    buffer.deadline = time.monotonic() + self.battle_timeout_s
            if time.monotonic() >= buffer.deadline:
                return self._forfeit_at_timeout(battle, state, rqid)
            choice = super().choose_move(battle)
            if inspect.isawaitable(choice):
                return self._record_async(battle, state, rqid, choice, buffer.deadline)
            self._record(battle, state, rqid, choice)
            return choice

        async def _record_async(self, battle, state, rqid, pending, deadline: float):
            if deadline == float("inf"):
                order = await pending
            else:
                try:
                    order = await asyncio.wait_for(pending, max(0.0, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    return await self._forfeit_at_timeout(battle, state, rqid)
            self._record(battle, state, rqid, order)
            return order

        async def _forfeit_at_timeout(self, battle: AbstractBattle, state: dict, rqid: Any) -> BattleOrder:
            """Forfeit ``battle`` (past its deadline) and answer with the default order."""
            logger.error("%s: no result %g s after %s's first decision: forfeiting (battle timeout)",
                         battle.battle_tag, self.battle_timeout_s, self.username)
            self.timed_out.append(battle.battle_tag)
            await self.ps_client.send_message("/forfeit", battle.battle_tag)
            order = self.choose_default_move()
            self._record(battle, state, rqid, order)
            return order

        def _record(self, battle: AbstractBattle, state: dict, rqid: Any, order: BattleOrder) -> None:
            buffer = self._buffers[battle.battle_tag]
            action = battle_order_to_action_idx(battle, order)
            buffer.choices += 1
            if buffer.actions and rqid is not None and rqid == buffer.last_rqid:
                # Asked again for the same request: the previous answer was rejected.
                buffer.actions[-1] = action
                buffer.invalid[-1] = True
                return
            buffer.states.append(state)
            buffer.actions.append(action)
            buffer.invalid.append(self._was_fallback(battle))
            buffer.last_rqid = rqid

        def _was_fallback(self, battle: AbstractBattle) -> bool:
            """True when the player says its own choice was illegal and it played a fallback
            (players that can, e.g. PolicyPlayer, expose ``last_decision_was_fallback``)."""
            ask = getattr(self, "last_decision_was_fallback", None)
            return bool(ask(battle.battle_tag)) if ask is not None else False

        async def _handle_battle_request(self, battle: AbstractBattle, maybe_default_order: bool = False):
            buffer = self._buffers.get(battle.battle_tag)
            choices_before = buffer.choices if buffer else 0
            await super()._handle_battle_request(battle, maybe_default_order)
            if maybe_default_order and buffer is not None and buffer.actions:
                # The server rejected the last choice. If poke-env did not ask us again
                # (choose_move replaced the action and set the flag), it sent "/choose default".
                if buffer.choices == choices_before:
                    buffer.actions[-1] = -1
                buffer.invalid[-1] = True

        # -- end of battle -----------------------------------------------------------------
        def _battle_finished_callback(self, battle: AbstractBattle) -> None:
            super()._battle_finished_callback(battle)
            buffer = self._buffers.pop(battle.battle_tag, None)
            if buffer is None or not buffer.actions:
                return  # no decision was taken (e.g. forfeited before the first request)
            try:
                self.recorded.append(self._write(battle, buffer))
            except Exception as error:  # noqa: BLE001 - must not kill poke-env's message loop
                logger.error("could not write the trajectory of %s: %r", battle.battle_tag, error)
                self.record_errors.append(f"{battle.battle_tag}: {error!r}")

        def _write(self, battle: AbstractBattle, buffer: _BattleBuffer) -> RecordedBattle:
            result = "win" if battle.won else "loss" if battle.lost else "tie"
            opponent = battle.opponent_username or "unknown"
            battle_format = self.format
            states = buffer.states + [UniversalState.from_Battle(battle).to_dict()]
            path, battle_id = write_battle(
                self.save_trajectories_to, battle_format, battle.battle_tag, self.username, opponent,
                result, battle.turn, states, buffer.actions, buffer.invalid, writer=WRITER,
            )
            return RecordedBattle(
                battle_tag=battle.battle_tag,
                battle_id=battle_id,
                result=result,
                turns=battle.turn,
                decisions=len(buffer.actions),
                invalid=sum(buffer.invalid),
                path=path,
            )

    RecordingPlayer.__name__ = RecordingPlayer.__qualname__ = f"Recording{player_cls.__name__}"
    RecordingPlayer.__module__ = __name__
    return RecordingPlayer
