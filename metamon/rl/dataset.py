"""``MetamonAMAGODataset``: metamon's parsed replays as AMAGO ``RLData`` trajectories.

One sample is one whole battle from one player's point of view, drawn with the wrapped dataset's
``random_sample()`` (a :class:`~metamon.data.parsed_replay_dset.ParsedReplayDataset` or a
:class:`~metamon.data.mixture.MixtureOfDatasets` of them). With T states and
A = ``action_space.gym_space.n`` actions the ``RLData`` holds::

    obs[k]                       (T, ...)     every observation key, stacked (text tokens as int64)
    obs["illegal_actions"]       (T, A) bool  True = illegal: ~legal[t] for t < T-1, last row all True
    obs["missing_action_mask"]   (T, 1) bool  missing[t] for t < T-1 (unrevealed action), last True
    actions                      (T-1, A) f32 one_hot(max(chosen[t], 0)); a missing action reads as 0
                                              and is masked out of the losses by missing_action_mask
                                              (amago's MISSING_ACTION_KEY: the agent's loss masks read it)
    rews                         (T-1, 1) f32 the reward function on consecutive states
    dones                        (T-1, 1) bool
    time_idxs                    (T, 1) int64 0..T-1
    rl2s                         derived by RLData: row 0 = 0, row t = [rews[t-1], actions[t-1]]

**Windows are cut once, by AMAGO**: ``RLDataset.__getitem__`` passes each whole battle to
``RLDataset.random_slice(traj, max_seq_len, padded_sampling)``. The wrapped datasets must
therefore be built with ``max_seq_len=None`` (checked here): a window cut earlier would start
``time_idxs`` at 0 mid-battle, and the experiment's ``padded_sampling`` mode would only ever see
the window instead of the battle's edges.

Legal sets come from the replay parser's permissive ``maybe_valid_actions``. If a recorded
(non-missing) action is not in its legal set, that one action is marked legal in
``illegal_actions`` (so a strictly masked actor never sees an expert action it cannot take) and
counted in ``stats["chosen_marked_legal"]``; nothing else is changed. ``stats`` is per process
(each DataLoader worker keeps its own counts).

:func:`obs_gym_space` gives the matching AMAGO observation space: the tokenized space's entries
plus ``"illegal_actions"`` (``"missing_action_mask"`` is a dataset-only extra key).
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

import gymnasium as gym
import numpy as np
import torch

from metamon.amago.loading import MISSING_ACTION_KEY, RLData, RLDataset
from metamon.interface import ActionSpace, ObservationSpace
from metamon.rl import ILLEGAL_ACTIONS_KEY, MetamonRLError

__all__ = ["MetamonAMAGODataset", "n_actions_of", "obs_gym_space"]

_ADDED_KEYS = (ILLEGAL_ACTIONS_KEY, MISSING_ACTION_KEY)


def n_actions_of(action_space: ActionSpace) -> int:
    """A, the size of a metamon action space's ``Discrete`` gym space."""
    gym_space = getattr(action_space, "gym_space", None)
    if not isinstance(gym_space, gym.spaces.Discrete):
        raise MetamonRLError(
            f"action_space must be a metamon ActionSpace with a Discrete gym space, got {action_space!r}"
        )
    return int(gym_space.n)


def obs_gym_space(observation_space: ObservationSpace, action_space: ActionSpace) -> gym.spaces.Dict:
    """The AMAGO observation space: ``observation_space.gym_space`` plus
    ``"illegal_actions": Box(0, 1, (A,), bool)``."""
    entries = dict(observation_space.gym_space.spaces)
    if ILLEGAL_ACTIONS_KEY in entries:
        raise MetamonRLError(
            f"observation space {type(observation_space).__name__} already has a key {ILLEGAL_ACTIONS_KEY!r}"
        )
    entries[ILLEGAL_ACTIONS_KEY] = gym.spaces.Box(
        low=0, high=1, shape=(n_actions_of(action_space),), dtype=bool
    )
    return gym.spaces.Dict(entries)


def _components(dset) -> list:
    """The leaf datasets of a (possibly nested) mixture."""
    children = getattr(dset, "datasets", None)
    if children is None:
        return [dset]
    return [leaf for child in children for leaf in _components(child)]


class MetamonAMAGODataset(RLDataset):
    """AMAGO ``RLDataset`` over metamon parsed replays (module docstring).

    Args:
        parsed_replay_dset: a ``ParsedReplayDataset`` or ``MixtureOfDatasets`` (anything with
            ``random_sample() -> (obs, actions, rewards, dones)`` and ``len()``), whose
            datasets were built with ``max_seq_len=None`` and the same action space.
        action_space: the metamon ``ActionSpace`` the items' actions are in (gives A).
        dset_name: AMAGO's dataset name (for logs).
        refresh_files_every_epoch: call ``refresh_files()`` on every wrapped dataset in
            :meth:`on_end_of_collection` (to see newly written self-play files).
    """

    def __init__(
        self,
        parsed_replay_dset,
        action_space: ActionSpace,
        dset_name: Optional[str] = None,
        refresh_files_every_epoch: bool = False,
    ):
        super().__init__(dset_name=dset_name)
        if not callable(getattr(parsed_replay_dset, "random_sample", None)):
            raise MetamonRLError(
                "parsed_replay_dset must be a ParsedReplayDataset or MixtureOfDatasets (it needs "
                f"random_sample()), got {type(parsed_replay_dset).__name__}"
            )
        for leaf in _components(parsed_replay_dset):
            if getattr(leaf, "max_seq_len", None) is not None:
                raise MetamonRLError(
                    f"{type(leaf).__name__} was built with max_seq_len={leaf.max_seq_len}; build it "
                    "with max_seq_len=None (whole battles): MetamonAMAGODataset's windows are cut "
                    "by RLDataset.random_slice so that time_idxs count from the battle start"
                )
        self.parsed_replay_dset = parsed_replay_dset
        self.action_space = action_space
        self.n_actions = n_actions_of(action_space)
        self.refresh_files_every_epoch = bool(refresh_files_every_epoch)
        self.stats: Counter = Counter(trajectories=0, chosen_marked_legal=0)

    @property
    def formats(self) -> list[str]:
        """The battle formats of the wrapped datasets (sorted, without repeats)."""
        return sorted({f for leaf in _components(self.parsed_replay_dset) for f in getattr(leaf, "formats", ())})

    def get_description(self) -> str:
        return (
            f"Metamon parsed replays: {len(self.parsed_replay_dset)} files, "
            f"{self.n_actions} actions ({type(self.action_space).__name__})"
        )

    def on_end_of_collection(self, experiment) -> dict:
        if self.refresh_files_every_epoch:
            for leaf in _components(self.parsed_replay_dset):
                leaf.refresh_files()
        return {"Num Replays": len(self.parsed_replay_dset)}

    def sample_random_trajectory(self) -> RLData:
        obs, actions, rewards, dones = self.parsed_replay_dset.random_sample()
        return self.item_to_rldata(obs, actions, rewards, dones)

    def item_to_rldata(self, obs: dict, actions: dict, rewards, dones) -> RLData:
        """One ``ParsedReplayDataset`` item -> ``RLData`` (the table in the module docstring)."""
        clash = [k for k in _ADDED_KEYS if k in obs]
        if clash:
            raise MetamonRLError(f"observations already contain the keys {clash} this dataset adds")
        chosen, legal, missing = actions["chosen"], actions["legal"], actions["missing"]
        rewards = np.asarray(rewards, dtype=np.float32)
        dones = np.asarray(dones, dtype=bool)
        n = len(chosen)  # T - 1 transitions
        if not (len(legal) == len(missing) == len(rewards) == len(dones) == n):
            raise MetamonRLError(
                f"item has {n} chosen actions but {len(legal)} legal sets, {len(missing)} missing "
                f"flags, {len(rewards)} rewards and {len(dones)} dones"
            )
        A = self.n_actions
        illegal = np.ones((n + 1, A), dtype=bool)
        missing_mask = np.ones((n + 1, 1), dtype=bool)
        index = np.zeros(n, dtype=np.int64)
        for t in range(n):
            action = int(chosen[t])
            if not -1 <= action < A or (action == -1) != bool(missing[t]):
                raise MetamonRLError(
                    f"chosen action {action} at step {t} (missing={missing[t]}) does not fit an "
                    f"action space of {A} actions ({type(self.action_space).__name__}): was the "
                    "dataset built with the same action space?"
                )
            for a in legal[t]:
                if not 0 <= a < A:
                    raise MetamonRLError(
                        f"legal action {a} at step {t} is outside 0..{A - 1}: was the dataset "
                        "built with the same action space?"
                    )
                illegal[t, a] = False
            missing_mask[t, 0] = bool(missing[t])
            if action >= 0:
                index[t] = action
                if illegal[t, action]:
                    illegal[t, action] = False
                    self.stats["chosen_marked_legal"] += 1
        one_hot = np.zeros((n, A), dtype=np.float32)
        one_hot[np.arange(n), index] = 1.0

        tensors = {}
        for key, values in obs.items():
            if len(values) != n + 1:
                raise MetamonRLError(f"obs[{key!r}] has {len(values)} entries for {n} transitions")
            stacked = torch.from_numpy(np.stack(values))
            tensors[key] = stacked.long() if stacked.dtype == torch.int32 else stacked
        tensors[ILLEGAL_ACTIONS_KEY] = torch.from_numpy(illegal)
        tensors[MISSING_ACTION_KEY] = torch.from_numpy(missing_mask)
        self.stats["trajectories"] += 1
        return RLData(
            obs=tensors,
            rews=torch.from_numpy(rewards).reshape(n, 1),
            dones=torch.from_numpy(dones).reshape(n, 1),
            actions=torch.from_numpy(one_hot),
            time_idxs=torch.arange(n + 1, dtype=torch.int64).reshape(n + 1, 1),
        )
