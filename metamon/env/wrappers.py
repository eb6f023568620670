"""Gymnasium environments over a local Showdown server (poke-env 0.16.1 underneath).

Three ways to find an opponent, one stepping API:

- :class:`BattleAgainstBaseline`: our agent challenges an in-process opponent, any baseline
  (``"GymLeader"``) or any poke-env ``Player`` class.
- :class:`QueueOnLocalLadder`: our agent searches the server's ladder; whoever else searches
  the same format on the same server is matched (other processes, humans).
- :class:`SelfPlayPair`: two of our agents challenge each other directly (no ladder luck);
  ``pair.envs`` are two gymnasium envs, each stepped from its own thread.

Every env speaks metamon's interface: ``reset()`` returns ``(obs, info)`` and ``step(a)``
returns ``(obs, reward, terminated, truncated, info)`` where ``obs`` is the chosen observation
space's dict, the reward is ``reward_function(previous_state, state)`` and
``info["legal_actions"]`` lists the agent-space actions that are legal now.

Invalid actions: an action that is not legal in the current request is replaced by a uniformly
random legal one (``info["invalid_action"] = True``; counted in ``invalid_action_count``). The
fallback is what gets played and recorded, and the trajectory file flags it.

Turn limit: once ``turn_limit`` decisions were made the agent forfeits at its next decision;
that step returns ``terminated = truncated = True`` (the battle really ended: a loss), so
time-limit truncation stays visible to algorithms that bootstrap on it.

``save_trajectories_to=DIR`` writes every finished battle from the agent's point of view to
``DIR/<format>/<7-field name>.json.lz4`` (see :mod:`metamon.data.trajectory_file`).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import queue
import sys
import threading
import time
from abc import ABC, abstractmethod
from typing import Optional, Sequence, Union

import gymnasium as gym
from poke_env.concurrency import POKE_LOOP
from poke_env.player import ForfeitBattleOrder, Player
from poke_env.ps_client.account_configuration import AccountConfiguration

from metamon.baselines import get_baseline
from metamon.battles.engine import ConnectionLostError
from metamon.battles.players import close_player, connection_closed
from metamon.data.trajectory_file import write_battle
from metamon.env.agent_player import Decision, ExternalDecisionPlayer, Finished, ServerPopup, forward_popups
from metamon.env.team_results import append_team_result
from metamon.errors import BattleError, MetamonError, TeamError, UnknownNameError
from metamon.formats import check_format, is_random_battle
from metamon.interface import (
    ActionSpace,
    ObservationSpace,
    RewardFunction,
    TokenizedObservationSpace,
    UniversalState,
    decide,
    get_action_space,
    get_observation_space,
    get_reward_function,
    legal_agent_actions,
    legal_orders,
)
from metamon.server import DEFAULT_PORT, check_server, server_configuration, unique_username
from metamon.teams import TeamSet, get_metamon_teams
from metamon.tokenizer import get_tokenizer

__all__ = ["PokeEnvWrapper", "BattleAgainstBaseline", "QueueOnLocalLadder", "SelfPlayPair"]

logger = logging.getLogger(__name__)


def _resolve_obs_space(observation_space, tokenizer) -> ObservationSpace:
    # Observation spaces keep per-battle memory: every env gets its own copy.
    if isinstance(observation_space, str):
        obs = get_observation_space(observation_space)
    else:
        obs = copy.deepcopy(observation_space)
    if tokenizer is None:
        return obs
    if isinstance(tokenizer, str):
        tokenizer = get_tokenizer(tokenizer)
    return TokenizedObservationSpace(obs, tokenizer)


def _resolve_team_set(battle_format: str, team_set) -> Optional[TeamSet]:
    if isinstance(team_set, str):
        return get_metamon_teams(battle_format, team_set)
    if team_set is None and not is_random_battle(battle_format):
        raise TeamError(
            f"Format {battle_format!r} needs teams: pass team_set='builtin' (or another team set)"
        )
    return team_set


class PokeEnvWrapper(gym.Env, ABC):
    """Base class: one battle at a time for one agent; subclasses say how battles start.

    Args:
        battle_format: a singles format the pinned server knows (``"gen1ou"``, ``"gen9randombattle"``).
        observation_space / action_space / reward_function: instances or registry names.
        team_set: a :class:`~metamon.teams.TeamSet`, a team-set name (``"builtin"``), or
            ``None`` for random-battle formats.
        tokenizer: optional tokenizer (name or object): observations then carry ``text_tokens``.
        turn_limit: decisions before the agent forfeits (see module docstring).
        save_trajectories_to: folder for trajectory files, or ``None``.
        server_url: port or URL of the local server (``check_server`` runs at construction).
        username: the agent's Showdown name (default ``MM-<10 digits>``).
        battle_timeout: seconds without any event from the server before :class:`BattleError`.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        battle_format: str,
        observation_space: Union[str, ObservationSpace],
        action_space: Union[str, ActionSpace],
        reward_function: Union[str, RewardFunction],
        team_set=None,
        tokenizer=None,
        turn_limit: int = 1000,
        save_trajectories_to: Optional[str] = None,
        server_url=DEFAULT_PORT,
        username: Optional[str] = None,
        battle_timeout: float = 300.0,
    ):
        self.battle_format = check_format(battle_format)
        check_server(server_url)
        self.server_url = server_url
        self.metamon_obs_space = _resolve_obs_space(observation_space, tokenizer)
        self.metamon_action_space = (
            get_action_space(action_space) if isinstance(action_space, str) else action_space
        )
        self.reward_function = (
            get_reward_function(reward_function) if isinstance(reward_function, str) else reward_function
        )
        self.team_set = _resolve_team_set(self.battle_format, team_set)
        self.turn_limit = turn_limit
        self.save_trajectories_to = save_trajectories_to
        self.battle_timeout = battle_timeout
        self.username = username or unique_username()

        self.observation_space = self.metamon_obs_space.gym_space
        self.action_space = gym.spaces.Discrete(self.metamon_action_space.gym_space.n)

        self.valid_action_count = 0
        self.invalid_action_count = 0
        self.battles_finished = 0
        self._decision: Optional[Decision] = None
        self._states: list[UniversalState] = []
        self._battle_task = None  # concurrent.futures.Future of the coroutine that runs the battle
        self.player = self._make_agent_player()

    # -- players ----------------------------------------------------------------------------
    def _player_kwargs(self, username: str, team) -> dict:
        return dict(
            account_configuration=AccountConfiguration(username, None),
            battle_format=self.battle_format,
            server_configuration=server_configuration(self.server_url),
            team=team,
            max_concurrent_battles=1,
            ping_interval=None,
            ping_timeout=None,
        )

    def _make_agent_player(self) -> ExternalDecisionPlayer:
        return ExternalDecisionPlayer(**self._player_kwargs(self.username, self.team_set))

    @abstractmethod
    def _start_battle(self):
        """Schedule the coroutine that starts (and runs until the end of) one battle; return
        its ``concurrent.futures.Future`` (or ``None`` when another env schedules it)."""

    @property
    def opponent_name(self) -> str:
        """Name recorded as the opponent in trajectory file names."""
        return "unknown"

    @property
    def start_timeout(self) -> float:
        """Seconds to wait for the first request of a new battle."""
        return self.battle_timeout

    # -- event plumbing ---------------------------------------------------------------------
    def _next_event(self, timeout: float) -> Union[Decision, Finished]:
        """The next Decision/Finished of our player. A server popup before the battle started
        (a rejected team or challenge) raises; later ones, and popups about commands sent to an
        earlier battle's room, are logged. A closed connection (the server stopped) raises
        :class:`~metamon.battles.ConnectionLostError` at once."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.player.events.get(timeout=0.25)
                if not isinstance(event, ServerPopup):
                    return event
                if not self._states and not event.about_a_battle_room:
                    raise BattleError(
                        f"The server refused to start the {self.battle_format} battle "
                        f"({event.username} was told: {event.message})"
                    )
                logger.warning("server popup for %s: %s", event.username, event.message)
            except queue.Empty:
                if connection_closed(self.player):
                    raise ConnectionLostError.of(self.player) from None
                task = self._battle_task
                if task is not None and task.done() and task.exception() is not None:
                    raise BattleError(
                        f"{self.battle_format} battle of {self.username} failed: {task.exception()!r}"
                    ) from task.exception()
                if time.monotonic() > deadline:
                    raise BattleError(
                        f"No event from the server for {timeout:.0f} s in a {self.battle_format} battle "
                        f"of {self.username} (server {self.server_url}); is the opponent still running?"
                    ) from None

    def _forfeit_and_drain(self) -> Finished:
        """Forfeit the battle in progress and wait until the server reports its end."""
        self._decision.answer(ForfeitBattleOrder())
        self._decision = None
        while True:
            event = self._next_event(self.battle_timeout)
            if isinstance(event, Finished):
                return event
            event.answer(ForfeitBattleOrder())  # a request that raced the forfeit

    # -- gymnasium API ----------------------------------------------------------------------
    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        super().reset(seed=seed)
        if self._decision is not None:  # abandoning a battle mid-way: forfeit it, record nothing
            self._forfeit_and_drain()
        self._wait_battle_task()
        self.player.reset_battles()
        self.metamon_obs_space.reset()
        self._states: list[UniversalState] = []
        self._actions: list[int] = []
        self._invalid: list[bool] = []
        self._episode_valid = self._episode_invalid = 0

        self._battle_task = self._start_battle()
        event = self._next_event(self.start_timeout)
        if not isinstance(event, Decision):
            raise BattleError(f"{self.battle_format} battle of {self.username} ended before its first turn")
        obs, info = self._observe(event)
        return obs, info

    def _wait_battle_task(self) -> None:
        if self._battle_task is not None:
            try:
                self._battle_task.result(timeout=self.battle_timeout)
            except Exception as e:  # reported, not fatal: the next battle starts fresh
                logger.warning("previous battle of %s ended with an error: %r", self.username, e)
            self._battle_task = None

    def _observe(self, event: Decision):
        self._decision = event
        state = UniversalState.from_Battle(event.battle)
        self._states.append(state)
        self._legal = legal_orders(state, event.battle)  # legal index -> its order, for decide
        obs = self.metamon_obs_space.state_to_obs(state)
        return obs, {"legal_actions": sorted(legal_agent_actions(state, self.metamon_action_space, self._legal))}

    def step(self, action):
        if self._decision is None:
            raise RuntimeError("step() called without a battle in progress; call reset() first")
        # the agent's order, or a random legal one when it has none (metamon.interface.decision)
        choice = decide(self._decision.battle, self._states[-1], self.metamon_action_space, action,
                        self.np_random, self._legal)
        order, idx, invalid = choice.order, choice.action_index, choice.invalid
        self._actions.append(idx)
        self._invalid.append(invalid)
        self.invalid_action_count += invalid
        self.valid_action_count += not invalid
        self._episode_invalid += invalid
        self._episode_valid += not invalid
        self._decision.answer(order)
        self._decision = None

        previous = self._states[-1]
        event = self._next_event(self.battle_timeout)
        truncated = False
        if isinstance(event, Decision) and len(self._actions) >= self.turn_limit:
            self._decision = event
            event = self._forfeit_and_drain()
            truncated = True
        if isinstance(event, Decision):
            obs, info = self._observe(event)
            reward = self.reward_function(previous, self._states[-1])
            info["invalid_action"] = invalid
            return obs, float(reward), False, False, info

        state = UniversalState.from_Battle(event.battle)
        self._states.append(state)
        obs = self.metamon_obs_space.state_to_obs(state)
        reward = self.reward_function(previous, state)
        info = self._end_of_battle(event, truncated)
        info["invalid_action"] = invalid
        return obs, float(reward), True, truncated, info

    def _end_of_battle(self, event: Finished, truncated: bool) -> dict:
        battle = event.battle
        self.battles_finished += 1
        result = "win" if battle.won else "loss" if battle.lost else "tie"
        info = {
            "legal_actions": [],
            "won": bool(battle.won),
            "result": result,
            "turns": battle.turn,
            "battle_tag": battle.battle_tag,
            "valid_action_count": self._episode_valid,
            "invalid_action_count": self._episode_invalid,
            "turn_limit_reached": truncated,
        }
        if self.save_trajectories_to is not None:
            info["trajectory_path"] = str(self._save_trajectory(battle, result))
        return info

    def _save_trajectory(self, battle, result: str):
        opponent = battle.opponent_username or self.opponent_name
        path, _ = write_battle(
            self.save_trajectories_to, self.battle_format, battle.battle_tag, self.username, opponent,
            result, battle.turn, [s.to_dict() for s in self._states], self._actions, self._invalid,
            writer="metamon-gemma env", opponent_in_name=self.opponent_name_for_file(opponent),
        )
        return path

    def opponent_name_for_file(self, opponent_username: str) -> str:
        return opponent_username

    def close(self):
        if self._decision is not None:
            try:
                self._forfeit_and_drain()
            except BattleError as e:
                logger.warning("could not forfeit the open battle on close: %s", e)
        if self._battle_task is not None and not self._battle_task.done():
            self._battle_task.cancel()  # a start the server refused never ends: do not leave it pending
        for player in self._players():
            try:  # also ends the message handlers the last battle left pending
                close_player(player, timeout_s=10)
            except Exception as e:  # closing is best effort; report, do not raise
                logger.warning("closing the connection of %s failed: %r", player.username, e)

    def _players(self) -> Sequence[Player]:
        return [self.player]


class BattleAgainstBaseline(PokeEnvWrapper):
    """Our agent against an in-process opponent (a baseline name or any poke-env Player class).

    Both sides draw teams from the same team set (independent samples per battle).
    """

    def __init__(
        self,
        battle_format: str,
        observation_space,
        action_space,
        reward_function,
        team_set=None,
        opponent_type: Union[str, type] = "RandomBaseline",
        turn_limit: int = 200,
        save_trajectories_to: Optional[str] = None,
        tokenizer=None,
        server_url=DEFAULT_PORT,
        username: Optional[str] = None,
        opponent_team_set=None,
        battle_timeout: float = 300.0,
    ):
        if isinstance(opponent_type, str):
            opponent_type = get_baseline(opponent_type)
        self.opponent_type = opponent_type
        super().__init__(
            battle_format, observation_space, action_space, reward_function, team_set=team_set,
            tokenizer=tokenizer, turn_limit=turn_limit, save_trajectories_to=save_trajectories_to,
            server_url=server_url, username=username, battle_timeout=battle_timeout,
        )
        opponent_team = (
            _resolve_team_set(self.battle_format, opponent_team_set) if opponent_team_set else self.team_set
        )
        self.opponent = opponent_type(**self._player_kwargs(unique_username(opponent_type.__name__), opponent_team))
        forward_popups(self.opponent, self.player.events)

    @property
    def opponent_name(self) -> str:
        return self.opponent_type.__name__

    def opponent_name_for_file(self, opponent_username: str) -> str:
        return self.opponent_type.__name__  # metamon names baseline opponents by class

    def _start_battle(self):
        return asyncio.run_coroutine_threadsafe(self.player.battle_against(self.opponent, n_battles=1), POKE_LOOP)

    def _players(self):
        return [self.player, self.opponent]


class QueueOnLocalLadder(PokeEnvWrapper):
    """Our agent searches the local server's ladder, one battle per ``reset()``.

    ``num_battles`` caps how many battles this env will queue for (``None``: no cap);
    ``ladder_timeout`` is how long a reset waits to be matched.

    metamon's keywords work as well (``QueueOnLocalLadder(battle_format=..., num_battles=...,
    observation_space=..., action_space=..., reward_function=..., player_team_set=...,
    player_username=...)``):

    * ``player_username`` / ``player_team_set``: the same as ``username`` / ``team_set`` (give
      one name of each pair, or equal values);
    * ``player_avatar``: the Showdown avatar shown for the agent;
    * ``start_timer_on_battle_start``: turn on Showdown's battle timer when a battle starts
      (metamon's default is True; ours False, as before, so a slow agent is never timed out);
    * ``save_team_results_to``: a folder for metamon's per-battle team-result CSV
      (:mod:`metamon.env.team_results`);
    * ``print_battle_bar``: after each step, rewrite one status line on stderr (username,
      battle number, decisions so far, wins / losses / ties); default False (metamon: True);
    * ``battle_backend``: only ``"poke-env"`` (metamon's own ``"metamon"`` backend is not
      provided here);
    * ``player_password``: must stay ``None``: the local server logs users in without a
      password, and there is no login server to check one.

    metamon's positional order differs (``num_battles`` second): pass ``num_battles`` by keyword.
    """

    def __init__(
        self,
        battle_format: str,
        observation_space,
        action_space,
        reward_function,
        team_set=None,
        num_battles: Optional[int] = None,
        username: Optional[str] = None,
        turn_limit: int = 1000,
        save_trajectories_to: Optional[str] = None,
        tokenizer=None,
        server_url=DEFAULT_PORT,
        ladder_timeout: float = 600.0,
        battle_timeout: float = 300.0,
        *,
        player_team_set=None,
        player_username: Optional[str] = None,
        player_password: Optional[str] = None,
        player_avatar: Optional[str] = None,
        start_timer_on_battle_start: bool = False,
        save_team_results_to: Optional[str] = None,
        battle_backend: str = "poke-env",
        print_battle_bar: bool = False,
    ):
        if isinstance(observation_space, int) and not isinstance(observation_space, bool):
            raise MetamonError(
                f"QueueOnLocalLadder got {observation_space!r} as observation_space: metamon passes "
                "num_battles second; here pass it by keyword (num_battles=...)"
            )
        if battle_backend != "poke-env":
            raise UnknownNameError("battle backend", battle_backend, ["poke-env"])
        if player_password is not None:
            raise MetamonError(
                f"player_password is not used on the local server (users log in without one); "
                f"leave it None for {player_username or username or 'this player'}"
            )
        self.num_battles = num_battles
        self.ladder_timeout = ladder_timeout
        self.avatar = player_avatar
        self.start_timer_on_battle_start = bool(start_timer_on_battle_start)
        self.save_team_results_to = save_team_results_to
        self.print_battle_bar = bool(print_battle_bar)
        self.results = {"win": 0, "loss": 0, "tie": 0}
        self._battles_queued = 0
        super().__init__(
            battle_format, observation_space, action_space, reward_function,
            team_set=_one_of("team_set", team_set, "player_team_set", player_team_set),
            tokenizer=tokenizer, turn_limit=turn_limit, save_trajectories_to=save_trajectories_to,
            server_url=server_url, username=_one_of("username", username, "player_username", player_username),
            battle_timeout=battle_timeout,
        )

    def _player_kwargs(self, username: str, team) -> dict:
        kwargs = super()._player_kwargs(username, team)
        kwargs.update(avatar=self.avatar, start_timer_on_battle_start=self.start_timer_on_battle_start)
        return kwargs

    @property
    def start_timeout(self) -> float:
        return self.ladder_timeout

    def _start_battle(self):
        if self.num_battles is not None and self._battles_queued >= self.num_battles:
            raise BattleError(f"{self.username} already played its num_battles={self.num_battles} ladder battles")
        self._battles_queued += 1
        return asyncio.run_coroutine_threadsafe(self.player.ladder(1), POKE_LOOP)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        if self.print_battle_bar:
            done = terminated or truncated
            print(
                f"\r{self.username} | battle {self._battles_queued} | decision {len(self._actions)} | "
                f"W {self.results['win']} L {self.results['loss']} T {self.results['tie']}",
                end="\n" if done else "", file=sys.stderr, flush=True,
            )
        return obs, reward, terminated, truncated, info

    def _end_of_battle(self, event: Finished, truncated: bool) -> dict:
        info = super()._end_of_battle(event, truncated)
        self.results[info["result"]] += 1
        if self.save_team_results_to is not None:
            team_file = getattr(self.team_set, "most_recent_team_file", None)
            append_team_result(
                self.save_team_results_to, self.username, self.battle_format,
                "" if team_file is None else str(team_file), event.battle.opponent_username or "unknown",
                info["result"], info["turns"], info["battle_tag"],
            )
        return info


def _one_of(name: str, value, metamon_name: str, metamon_value):
    """The value given under our name or metamon's (refusing two different values)."""
    if metamon_value is None:
        return value
    if value is not None and value != metamon_value:
        raise MetamonError(f"{name}={value!r} and {metamon_name}={metamon_value!r} disagree: give one of them")
    return metamon_value


class _SelfPlaySide(PokeEnvWrapper):
    """One agent of a :class:`SelfPlayPair`; its ``reset`` meets the other side's."""

    def __init__(self, pair: "SelfPlayPair", challenger: bool, **kwargs):
        self._pair = pair
        self._challenger = challenger
        super().__init__(**kwargs)

    @property
    def opponent_name(self) -> str:
        return self._pair.envs[1 if self._challenger else 0].username

    def _start_battle(self):
        try:
            self._pair._barrier.wait(timeout=self.battle_timeout)
        except threading.BrokenBarrierError:
            self._pair._barrier.reset()
            raise BattleError(
                "The other env of the self-play pair did not call reset() in time; "
                "reset and step both envs, each from its own thread (see SelfPlayPair)."
            ) from None
        if not self._challenger:
            return None
        other = self._pair.envs[1].player
        return asyncio.run_coroutine_threadsafe(self.player.battle_against(other, n_battles=1), POKE_LOOP)


class SelfPlayPair:
    """Two of our agents battling each other by direct challenge.

    ``pair.envs`` holds two gymnasium envs (``envs[0]`` challenges ``envs[1]``). A battle needs
    both: call ``reset``/``step`` of each from its own thread (a Showdown turn waits for both
    players). Both sides write trajectories (when asked) with one shared battle id.

    Example::

        pair = SelfPlayPair("gen1ou", "DefaultObservationSpace", "DefaultActionSpace",
                            "DefaultShapedReward", team_set="builtin")
        def play(env, policy):
            obs, info = env.reset()
            done = False
            while not done:
                obs, r, done, trunc, info = env.step(policy(obs, info))
        threads = [threading.Thread(target=play, args=(e, p)) for e, p in zip(pair.envs, policies)]
    """

    def __init__(self, battle_format: str, observation_space, action_space, reward_function,
                 team_set=None, usernames: Optional[Sequence[str]] = None, **env_kwargs):
        self._barrier = threading.Barrier(2)
        names = list(usernames) if usernames else [unique_username("SPa"), unique_username("SPb")]
        self.envs = [
            _SelfPlaySide(self, challenger=(i == 0), battle_format=battle_format,
                          observation_space=observation_space, action_space=action_space,
                          reward_function=reward_function, team_set=team_set, username=names[i],
                          **env_kwargs)
            for i in range(2)
        ]

    def close(self):
        for env in self.envs:
            env.close()
