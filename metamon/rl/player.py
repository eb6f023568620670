"""A trained policy is a poke-env ``Player``: :class:`PolicyPlayer` runs an AMAGO agent in battles.

Per battle the player keeps what the training data had per trajectory:

* its own deep copy of the observation space (history-dependent spaces are reset per battle),
* the previous ``UniversalState`` and the previous action, giving the RL² input
  ``rl2s[t] = [r_{t-1}, one_hot(a_{t-1})]`` (A+1 floats; all zeros at t = 0) with
  ``r_{t-1} = reward_function(state_{t-1}, state_t)``,
* the time index t (decisions so far in this battle),
* one row of the trajectory encoder's hidden state (the Transformer's KV cache).

``choose_move`` (a coroutine on poke-env's event loop) builds the observation (plus
``"illegal_actions"``: bool (A,), True where the agent action has no legal order, computed with
:func:`metamon.interface.legal_agent_actions` exactly as the gym env does) and submits it
to an :class:`InferenceBatcher`. The batcher owns a thread that gathers the requests pending
from concurrent battles (it waits at most ``window_s`` after the first one, and not at all once
every open battle is waiting) and runs ONE ``agent.get_actions`` over them::

    obs[k]     (N, 1, ...)    the N battles' observations
    rl2s       (N, 1, A+1)
    time_idxs  (N, 1, 1)      int64
    hidden     TformerHiddenState.select(slots)  ->  get_actions  ->  .assign(slots, new)
    actions    (N, 1, 1)      uint8

Trajectory encoders whose hidden state has no ``select``/``assign`` (GRU, feed-forward) are run
battle by battle, each with its own hidden state of batch size 1. Inference runs under
``torch.no_grad`` on the batcher's thread, so poke-env's event loop never blocks on the model.

The agent's action is mapped to an order by :func:`metamon.interface.decide`, the decision step
the gym env uses too. If it has no legal order, a uniformly random legal one is played and
counted in ``invalid_fallbacks``. When Showdown rejects an answer anyway (poke-env asks again
for the same request id) a random legal order is sent without running the model again
(``rejected_choices``). The next ``rl2s`` uses the action that was *played* (as the trajectory
files and hence the training data record it).

Saving trajectories: ``metamon.data.recording.recording_player(PolicyPlayer)``; a fallback
decision is flagged ``invalid`` in the written file (through ``last_decision_was_fallback``).

Example::

    agent, info = load_agent("runs/my_run")
    obs_space, action_space, reward_fn = build_spaces(info)
    player = PolicyPlayer(agent, obs_space, action_space, reward_fn, battle_format="gen1ou",
                          team=get_metamon_teams("gen1ou"), max_concurrent_battles=10,
                          server_configuration=server_configuration(8000))
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import logging
import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

import numpy as np
import torch
from poke_env.battle import AbstractBattle
from poke_env.player import BattleOrder, Player

from metamon.interface import (
    ActionSpace,
    ObservationSpace,
    RewardFunction,
    UniversalAction,
    UniversalState,
    decide,
    legal_agent_actions,
    legal_orders,
    request_id,
)
from metamon.rl import MetamonRLError

__all__ = ["InferenceBatcher", "PolicyPlayer", "percentile_ms"]

logger = logging.getLogger(__name__)

_STOP = object()


@dataclass
class _Request:
    slot: int
    obs: Dict[str, np.ndarray]
    rl2: np.ndarray  # (A+1,) float32
    time_idx: int
    sample: bool
    future: concurrent.futures.Future


def _obs_tensor(arrays: List[np.ndarray], device) -> torch.Tensor:
    """Stack N per-battle arrays into (N, 1, ...); integer ids become int64 (embedding input)."""
    stacked = np.stack(arrays)
    if stacked.dtype.kind in "iu":
        stacked = stacked.astype(np.int64)
    return torch.from_numpy(stacked).unsqueeze(1).to(device)


class InferenceBatcher:
    """Runs ``agent.get_actions`` for many battles at once, one hidden-state row per battle.

    Args:
        agent: a :class:`metamon.amago.agent.Agent` (put in eval mode here).
        capacity: initial number of hidden-state rows (grows by doubling when more battles
            are open at once).
        window_s: after the first pending request, wait at most this long for more.
        max_batch: most requests per ``get_actions`` call (``None``: no limit).
        device: where inputs go (default: the agent's parameters' device).

    Use :meth:`open_slot` at a battle's start, :meth:`submit` per decision and
    :meth:`close_slot` at its end; :meth:`close` stops the thread. Counters: ``batch_sizes``
    (``Counter`` of batch size -> number of ``get_actions`` calls), ``calls``.
    """

    def __init__(self, agent, capacity: int = 1, window_s: float = 0.002, max_batch: Optional[int] = None,
                 device=None):
        if capacity < 1:
            raise MetamonRLError(f"InferenceBatcher capacity must be at least 1, got {capacity}")
        if max_batch is not None and max_batch < 1:
            raise MetamonRLError(f"InferenceBatcher max_batch must be at least 1 or None, got {max_batch}")
        self.agent = agent.eval()
        self.device = torch.device(device) if device is not None else next(agent.parameters()).device
        self.window_s = window_s
        self.max_batch = max_batch
        self.batch_sizes: Counter = Counter()
        self._traj = agent.traj_encoder
        probe = self._traj.init_hidden_state(1, self.device)
        self.batched = hasattr(probe, "select") and hasattr(probe, "assign")

        self._lock = threading.Lock()
        self._capacity = capacity  # rows promised to open_slot callers
        self._free = list(range(capacity))
        self._open: set = set()
        self._inflight: set = set()
        self._pending_resets: set = set()
        # Owned by the worker thread:
        self._hidden = self._traj.init_hidden_state(capacity, self.device) if self.batched else None
        self._hidden_rows = capacity
        self._per_slot: Dict[int, object] = {}

        self._queue: "queue.Queue" = queue.Queue()
        self._thread = threading.Thread(target=self._worker, name="metamon-inference", daemon=True)
        self._thread.start()

    # -- slots (any thread) ------------------------------------------------------------------
    def open_slot(self) -> int:
        """Reserve a fresh hidden-state row for a new battle (its memory is cleared)."""
        with self._lock:
            if not self._free:
                grown = self._capacity * 2
                self._free.extend(range(self._capacity, grown))
                self._capacity = grown
            slot = min(self._free)
            self._free.remove(slot)
            self._open.add(slot)
            self._pending_resets.add(slot)
            return slot

    def close_slot(self, slot: int) -> None:
        """Release ``slot`` (the battle ended)."""
        with self._lock:
            if slot in self._open:
                self._open.discard(slot)
                self._free.append(slot)

    @property
    def open_slots(self) -> int:
        with self._lock:
            return len(self._open)

    def submit(self, slot: int, obs: Dict[str, np.ndarray], rl2: np.ndarray, time_idx: int,
               sample: bool = True) -> concurrent.futures.Future:
        """Queue one decision of the battle in ``slot``; the future resolves to the agent's
        action (an int). ``obs`` maps each observation key to one timestep's array."""
        with self._lock:
            if slot not in self._open:
                raise MetamonRLError(f"slot {slot} is not open; call open_slot() first")
            if slot in self._inflight:
                raise MetamonRLError(f"slot {slot} already has a decision in flight")
            self._inflight.add(slot)
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put(_Request(slot, obs, np.asarray(rl2, dtype=np.float32), int(time_idx), bool(sample), future))
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker thread (pending requests are still answered first)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    # -- worker thread -------------------------------------------------------------------------
    def _worker(self) -> None:
        with torch.no_grad():
            stop = False
            while not stop:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                deadline = time.monotonic() + self.window_s
                while self.max_batch is None or len(batch) < self.max_batch:
                    if len(batch) >= self.open_slots:
                        break  # every open battle is waiting: no one else can join
                    remaining = deadline - time.monotonic()
                    try:
                        item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                        break
                    batch.append(item)
                self._run(batch)

    def _run(self, batch: List[_Request]) -> None:
        try:
            self._sync_slots()
            for sample in (True, False):
                group = [r for r in batch if r.sample == sample]
                if group:
                    actions = self._infer(group, sample)
                    for request, action in zip(group, actions):
                        self._finish(request, result=action)
        except Exception as error:  # noqa: BLE001 - every waiting battle must hear about it
            for request in batch:
                if not request.future.done():
                    self._finish(request, error=error)

    def _finish(self, request: _Request, result=None, error=None) -> None:
        with self._lock:
            self._inflight.discard(request.slot)
        if error is not None:
            request.future.set_exception(error)
        else:
            request.future.set_result(result)

    def _sync_slots(self) -> None:
        """Apply the capacity growth and row resets requested by ``open_slot``."""
        with self._lock:
            rows, resets = self._capacity, sorted(self._pending_resets)
            self._pending_resets.clear()
        if not self.batched:
            for slot in resets:
                self._per_slot[slot] = self._traj.init_hidden_state(1, self.device)
            return
        if rows > self._hidden_rows:
            grown = self._traj.init_hidden_state(rows, self.device)
            grown.assign(torch.arange(self._hidden_rows, device=self.device), self._hidden)
            self._hidden, self._hidden_rows = grown, rows
        if resets:
            dones = np.zeros(self._hidden_rows, dtype=bool)
            dones[resets] = True
            reset = self._traj.reset_hidden_state(self._hidden, dones)
            self._hidden = reset if reset is not None else self._hidden

    def _infer(self, group: List[_Request], sample: bool) -> List[int]:
        self.batch_sizes[len(group)] += 1
        if not self.batched:
            return [self._infer_one(r, sample) for r in group]
        obs = {k: _obs_tensor([r.obs[k] for r in group], self.device) for k in group[0].obs}
        rl2s = torch.from_numpy(np.stack([r.rl2 for r in group])).unsqueeze(1).to(self.device)
        time_idxs = torch.tensor([r.time_idx for r in group], dtype=torch.long, device=self.device).view(-1, 1, 1)
        slots = torch.tensor([r.slot for r in group], dtype=torch.long, device=self.device)
        hidden = self._hidden.select(slots)
        actions, hidden = self.agent.get_actions(obs, rl2s, time_idxs, hidden_state=hidden, sample=sample)
        self._hidden.assign(slots, hidden)
        return [int(a) for a in actions[:, 0, 0].tolist()]

    def _infer_one(self, request: _Request, sample: bool) -> int:
        obs = {k: _obs_tensor([v], self.device) for k, v in request.obs.items()}
        rl2s = torch.from_numpy(request.rl2).view(1, 1, -1).to(self.device)
        time_idxs = torch.tensor([[[request.time_idx]]], dtype=torch.long, device=self.device)
        actions, hidden = self.agent.get_actions(
            obs, rl2s, time_idxs, hidden_state=self._per_slot[request.slot], sample=sample
        )
        self._per_slot[request.slot] = hidden
        return int(actions[0, 0, 0])


@dataclass
class _BattleContext:
    slot: int
    obs_space: ObservationSpace
    prev_state: Optional[UniversalState] = None
    prev_action: Optional[int] = None  # agent-space action played at the previous decision
    t: int = 0
    last_rqid: object = None
    rejected_rqid: object = None


def percentile_ms(latencies_s: List[float], q: float) -> float:
    """The ``q``-th percentile of latencies given in seconds, in milliseconds (nan if none)."""
    return float(np.percentile(latencies_s, q) * 1000.0) if latencies_s else float("nan")


class PolicyPlayer(Player):
    """A poke-env ``Player`` whose moves come from an AMAGO agent (see the module docstring).

    Args:
        agent: the agent (e.g. from :func:`metamon.rl.run_dir.load_agent`).
        observation_space: the (tokenized) observation space the agent was trained with; each
            battle gets a deep copy.
        action_space / reward_function: the run's action space and reward function.
        sample: sample from the policy (default) or take the most likely action.
        batcher: an :class:`InferenceBatcher` to share with other players of the same agent;
            by default the player makes (and :meth:`close` stops) its own.
        batch_window_s / max_batch: settings of the player's own batcher.
        seed: seeds the random fallback choices.
        **player_kwargs: poke-env ``Player`` arguments (``battle_format``, ``team``,
            ``max_concurrent_battles``, ``server_configuration``, ``account_configuration``...).

    Statistics (over the player's lifetime): ``decisions``, ``invalid_fallbacks``,
    ``rejected_choices``, ``inference_errors``, ``decision_latencies`` (seconds per decision,
    from the request to the order); :meth:`stats` summarises them.
    """

    def __init__(
        self,
        agent,
        observation_space: ObservationSpace,
        action_space: ActionSpace,
        reward_function: RewardFunction,
        *,
        sample: bool = True,
        batcher: Optional[InferenceBatcher] = None,
        batch_window_s: float = 0.002,
        max_batch: Optional[int] = None,
        seed: Optional[int] = None,
        **player_kwargs,
    ):
        super().__init__(**player_kwargs)
        self.observation_space = observation_space
        self.action_space = action_space
        self.reward_function = reward_function
        self.n_actions = int(action_space.gym_space.n)
        self.sample = sample
        self._owns_batcher = batcher is None
        self.batcher = batcher if batcher is not None else InferenceBatcher(
            agent, capacity=max(1, self._max_concurrent_battles), window_s=batch_window_s, max_batch=max_batch
        )
        self._rng = random.Random(seed)
        self._contexts: Dict[str, _BattleContext] = {}
        self._fallback_flags: Dict[str, bool] = {}
        self.decisions = 0
        self.invalid_fallbacks = 0
        self.rejected_choices = 0
        self.inference_errors = 0
        self.decision_latencies: List[float] = []

    # -- per-battle state ----------------------------------------------------------------------
    def _context(self, battle: AbstractBattle) -> _BattleContext:
        ctx = self._contexts.get(battle.battle_tag)
        if ctx is None:
            # A private copy of the (history-dependent) space; the frozen tokenizer is shared.
            tokenizer = getattr(self.observation_space, "tokenizer", None)
            memo = {id(tokenizer): tokenizer} if tokenizer is not None else {}
            obs_space = copy.deepcopy(self.observation_space, memo)
            obs_space.reset()
            ctx = _BattleContext(slot=self.batcher.open_slot(), obs_space=obs_space)
            self._contexts[battle.battle_tag] = ctx
        return ctx

    def _battle_finished_callback(self, battle: AbstractBattle) -> None:
        super()._battle_finished_callback(battle)
        ctx = self._contexts.pop(battle.battle_tag, None)
        self._fallback_flags.pop(battle.battle_tag, None)
        if ctx is not None:
            self.batcher.close_slot(ctx.slot)

    # -- decisions -----------------------------------------------------------------------------
    def _model_inputs(self, ctx: _BattleContext, state: UniversalState, legal: Iterable[int]):
        """(obs incl. "illegal_actions", rl2 (A+1,)) for this decision."""
        obs = ctx.obs_space.state_to_obs(state)
        legal_agent = legal_agent_actions(state, self.action_space, legal)
        obs["illegal_actions"] = np.array([a not in legal_agent for a in range(self.n_actions)], dtype=bool)
        rl2 = np.zeros(self.n_actions + 1, dtype=np.float32)
        if ctx.prev_state is not None:
            rl2[0] = self.reward_function(ctx.prev_state, state)
            rl2[1 + ctx.prev_action] = 1.0
        return obs, rl2

    async def choose_move(self, battle: AbstractBattle) -> BattleOrder:
        start = time.perf_counter()
        ctx = self._context(battle)
        rqid = request_id(battle)
        if ctx.t > 0 and rqid is not None and rqid == ctx.last_rqid:
            # Showdown rejected our answer to this request: answer again without the model
            # (counted once per request, however many retries it takes).
            self.rejected_choices += ctx.rejected_rqid != rqid
            ctx.rejected_rqid = rqid
            return Player.choose_random_singles_move(battle)

        state = UniversalState.from_Battle(battle)
        legal = legal_orders(state, battle)  # legal index -> its order, played as is by decide
        obs, rl2 = self._model_inputs(ctx, state, legal)
        try:
            future = self.batcher.submit(ctx.slot, obs, rl2, ctx.t, self.sample)
            action = await asyncio.wrap_future(future)
            choice = decide(battle, state, self.action_space, action, self._rng, legal)
        except Exception as error:  # noqa: BLE001 - a failing model must not hang the battle
            logger.error("inference failed in %s: %r; playing a random legal move", battle.battle_tag, error)
            self.inference_errors += 1
            action = None
            choice = decide(battle, state, self.action_space, None, self._rng, legal)
        order, idx, fallback = choice.order, choice.action_index, choice.invalid
        if fallback:
            self.invalid_fallbacks += action is not None
        self._fallback_flags[battle.battle_tag] = fallback
        played = (
            int(self.action_space.action_to_agent_output(state, UniversalAction(idx)))
            if idx >= 0
            else (action if action is not None else 0)
        )
        ctx.prev_state, ctx.prev_action, ctx.last_rqid = state, played, rqid
        ctx.t += 1
        self.decisions += 1
        self.decision_latencies.append(time.perf_counter() - start)
        return order

    def last_decision_was_fallback(self, battle_tag: str) -> bool:
        """True when the latest order of ``battle_tag`` replaced an illegal (or failed) choice."""
        return self._fallback_flags.get(battle_tag, False)

    # -- reporting / shutdown ------------------------------------------------------------------
    def stats(self) -> dict:
        """Decision counters and latency percentiles (milliseconds)."""
        bad = self.invalid_fallbacks + self.rejected_choices + self.inference_errors
        valid = max(0, self.decisions - bad)
        return {
            "decisions": self.decisions,
            "invalid_fallbacks": self.invalid_fallbacks,
            "rejected_choices": self.rejected_choices,
            "inference_errors": self.inference_errors,
            "valid_action_pct": 100.0 * valid / self.decisions if self.decisions else float("nan"),
            "latency_p50_ms": percentile_ms(self.decision_latencies, 50),
            "latency_p95_ms": percentile_ms(self.decision_latencies, 95),
        }

    def close(self) -> None:
        """Release the hidden-state rows of battles that never finished and stop the player's
        own batcher (a shared one is left to its owner). Does not close the websocket."""
        for ctx in self._contexts.values():
            self.batcher.close_slot(ctx.slot)
        self._contexts.clear()
        if self._owns_batcher:
            self.batcher.close()
