"""Training data plumbing: one trajectory (`RLData`), padded batches (`Batch`) and datasets.

Time alignment (one trajectory of T observations, t = 0 … T−1):

    obs[t]        o_t                                   dict of (T, …) tensors
    rl2s[t]       [r_{t−1}, a_{t−1}]  (row 0 = zeros)   (T, 1+A) float
    time_idxs[t]  step counter since the episode start  (T, 1) int64
    actions[t]    a_t taken at o_t (one-hot, discrete)  (T−1, A) float
    rews[t]       r_t received after a_t                (T−1, 1) float
    dones[t]      True iff o_{t+1} is terminal          (T−1, 1) bool

Optional per-step data: ``obs[MISSING_ACTION_KEY]`` (``"missing_action_mask"``), (T, 1) bool, True
at t when the action a_t is unknown (a dataset that records "no action seen" there). The agent's
loss masks leave those steps out; row T−1 has no action and is ignored. Encoders must ignore the
key (it is not part of the observation space).

Batches are right-padded with ``MAGIC_PAD_VAL = 4.0`` in every tensor (bool tensors become True,
integer tensors 4). A position t of a batch is real iff not every entry of ``rl2s[b, t, :]``
equals 4.0 (`valid_step_mask`); a one-hot action can never be all 4s.

Randomness: window starts (`RLDataset.random_slice`) and mixture draws (`MixtureOfDatasets`) use
Python's global ``random`` module only. PyTorch reseeds ``random`` in every DataLoader worker, and
checkpoint RNG restoration covers it in the main process (``dloader_workers=0``).
"""

from __future__ import annotations

import abc
import random
from dataclasses import dataclass, fields
from typing import Any, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from metamon.amago.utils import MAGIC_PAD_VAL  # 4.0, re-exported here as in AMAGO

PADDED_SAMPLING_MODES = ("none", "both", "left", "right")
MISSING_ACTION_KEY = "missing_action_mask"
"""Optional obs entry, (T, 1) bool: True where a_t is unknown and must not be trained on."""


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise TypeError(f"RLData.{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")


def _check_shape(name: str, x: torch.Tensor, expected: tuple) -> None:
    if tuple(x.shape) != expected:
        raise ValueError(f"RLData.{name} must have shape {expected}, got {tuple(x.shape)}")


class RLData:
    """One training example: a trajectory (or a window of one) of T observations.

    Args:
        obs: dict of tensors, each (T, …). Must not be empty.
        rews: (T−1, 1) floating rewards.
        dones: (T−1, 1) bool terminal flags.
        actions: (T−1, A) floating actions (one-hot for discrete spaces).
        time_idxs: (T, 1) int64 episode step counters.
        rl2s: (T, 1+A) or None. When None it is derived: row 0 = 0, row t = [rews[t−1], actions[t−1]].

    numpy arrays are accepted and wrapped with ``torch.from_numpy`` (no copy).
    ``len(data)`` is the number of transitions T−1.
    """

    def __init__(
        self,
        obs: dict,
        rews,
        dones,
        actions,
        time_idxs,
        rl2s=None,
    ):
        if not isinstance(obs, dict) or not obs:
            raise TypeError("RLData.obs must be a non-empty dict of (T, ...) tensors")
        self.obs = {k: _as_tensor(f"obs[{k!r}]", v) for k, v in obs.items()}
        self.time_idxs = _as_tensor("time_idxs", time_idxs)
        self.rews = _as_tensor("rews", rews)
        self.dones = _as_tensor("dones", dones)
        self.actions = _as_tensor("actions", actions)

        if self.time_idxs.ndim != 2 or self.time_idxs.shape[1] != 1 or self.time_idxs.shape[0] < 1:
            raise ValueError(f"RLData.time_idxs must have shape (T, 1) with T >= 1, got {tuple(self.time_idxs.shape)}")
        if self.time_idxs.dtype != torch.int64:
            raise TypeError(f"RLData.time_idxs must be int64, got {self.time_idxs.dtype}")
        T = self.time_idxs.shape[0]
        for k, v in self.obs.items():
            if v.ndim < 1 or v.shape[0] != T:
                raise ValueError(
                    f"RLData.obs[{k!r}] must have T={T} rows (like time_idxs), got shape {tuple(v.shape)}"
                )
        if self.actions.ndim != 2 or not self.actions.is_floating_point():
            raise ValueError(
                "RLData.actions must be a floating (T-1, A) tensor, "
                f"got {self.actions.dtype} {tuple(self.actions.shape)}"
            )
        A = self.actions.shape[1]
        _check_shape("actions", self.actions, (T - 1, A))
        _check_shape("rews", self.rews, (T - 1, 1))
        if not self.rews.is_floating_point():
            raise TypeError(f"RLData.rews must be floating point, got {self.rews.dtype}")
        _check_shape("dones", self.dones, (T - 1, 1))
        if self.dones.dtype != torch.bool:
            raise TypeError(f"RLData.dones must be bool, got {self.dones.dtype}")

        if rl2s is None:
            prev = torch.cat((self.rews, self.actions.to(self.rews.dtype)), dim=-1)
            self.rl2s = torch.cat((torch.zeros(1, 1 + A, dtype=prev.dtype), prev), dim=0)
        else:
            self.rl2s = _as_tensor("rl2s", rl2s)
            _check_shape("rl2s", self.rl2s, (T, 1 + A))

    def __len__(self) -> int:
        return self.time_idxs.shape[0] - 1

    def __repr__(self) -> str:
        keys = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.obs.items())
        return f"RLData(T={len(self) + 1}, A={self.actions.shape[1]}, obs={{{keys}}})"


@dataclass
class Batch:
    """A right-padded batch (B sequences of L observations; see the module docstring).

    obs: dict of (B, L, …); rl2s (B, L, 1+A); rews (B, L−1, 1); dones (B, L−1, 1) bool;
    actions (B, L−1, A); time_idxs (B, L, 1) int64.
    """

    obs: dict
    rl2s: torch.Tensor
    rews: torch.Tensor
    dones: torch.Tensor
    actions: torch.Tensor
    time_idxs: torch.Tensor

    def _map(self, fn) -> dict:
        out = {f.name: fn(getattr(self, f.name)) for f in fields(self) if f.name != "obs"}
        out["obs"] = {k: fn(v) for k, v in self.obs.items()}
        return out

    def to(self, device, non_blocking: bool = False) -> "Batch":
        """Move every tensor to ``device`` in place; returns self (accelerate's prepared
        DataLoader calls it with ``non_blocking``)."""
        for name, value in self._map(lambda x: x.to(device, non_blocking=non_blocking)).items():
            setattr(self, name, value)
        return self

    def pin_memory(self) -> "Batch":
        """Pinned copy (called by ``DataLoader(pin_memory=True)``)."""
        return Batch(**self._map(lambda x: x.pin_memory()))

    @property
    def batch_size(self) -> int:
        return self.rl2s.shape[0]

    @property
    def seq_len(self) -> int:
        """L, the number of observations per sequence (padded length)."""
        return self.rl2s.shape[1]


def valid_step_mask(rl2s: torch.Tensor) -> torch.Tensor:
    """(B, L, 1+A) rl2s -> (B, L) bool: True where the position is real (not all entries == PAD)."""
    return ~(rl2s == MAGIC_PAD_VAL).all(dim=-1)


def known_action_mask(batch: "Batch") -> torch.Tensor:
    """(B, L−1) bool: False where ``obs[MISSING_ACTION_KEY][:, t]`` marks a_t as unknown (padded
    rows read True there, so they are False too); all True when the batch has no such key."""
    B, L = batch.rl2s.shape[:2]
    missing = batch.obs.get(MISSING_ACTION_KEY)
    if missing is None:
        return torch.ones(B, L - 1, dtype=torch.bool, device=batch.rl2s.device)
    if missing.shape[:2] != (B, L) or missing[0, 0].numel() != 1:
        raise ValueError(
            f"obs[{MISSING_ACTION_KEY!r}] must have shape (B, L, 1) = ({B}, {L}, 1), got {tuple(missing.shape)}"
        )
    return ~missing[:, :-1].reshape(B, L - 1).bool()


def _pad_stack(name: str, seqs: list) -> torch.Tensor:
    """Stack (T_i, …) tensors into (B, max T_i, …), right-padded with PAD (True for bool, 4 for ints)."""
    trailing = {tuple(s.shape[1:]) for s in seqs}
    dtypes = {s.dtype for s in seqs}
    if len(trailing) != 1 or len(dtypes) != 1:
        raise ValueError(
            f"cannot collate {name}: items differ in trailing shape {sorted(trailing)} "
            f"or dtype {sorted(map(str, dtypes))}"
        )
    max_len = max(s.shape[0] for s in seqs)
    out = torch.full((len(seqs), max_len, *seqs[0].shape[1:]), MAGIC_PAD_VAL, dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out


def RLData_pad_collate(samples: list) -> Batch:
    """Collate a list of `RLData` into a batch-first `Batch`, right-padding every tensor with PAD."""
    if not samples:
        raise ValueError("RLData_pad_collate needs at least one RLData")
    keys = set(samples[0].obs)
    for s in samples:
        if set(s.obs) != keys:
            raise ValueError(f"cannot collate RLData with different obs keys: {sorted(keys)} vs {sorted(s.obs)}")
    return Batch(
        obs={k: _pad_stack(f"obs[{k!r}]", [s.obs[k] for s in samples]) for k in sorted(keys)},
        rl2s=_pad_stack("rl2s", [s.rl2s for s in samples]),
        rews=_pad_stack("rews", [s.rews for s in samples]),
        dones=_pad_stack("dones", [s.dones for s in samples]),
        actions=_pad_stack("actions", [s.actions for s in samples]),
        time_idxs=_pad_stack("time_idxs", [s.time_idxs for s in samples]),
    )


class RLDataset(Dataset, abc.ABC):
    """Abstract dataset of trajectories; every item is a random window of a random trajectory.

    There is no real indexing: ``__getitem__(i)`` ignores ``i``, draws a trajectory with
    `sample_random_trajectory` and cuts a window with `random_slice`. ``len()`` is the number of
    items one epoch of the DataLoader should draw (set by `configure`).
    """

    def __init__(self, dset_name: Optional[str] = None):
        self.dset_name = dset_name
        self.configured = False

    def configure(
        self,
        items_per_epoch: int,
        max_seq_len: int,
        padded_sampling: str = "none",
        has_edit_rights: bool = True,
    ) -> None:
        if not isinstance(items_per_epoch, int) or items_per_epoch < 1:
            raise ValueError(f"items_per_epoch must be a positive int, got {items_per_epoch!r}")
        if not isinstance(max_seq_len, int) or max_seq_len < 1:
            raise ValueError(f"max_seq_len must be a positive int, got {max_seq_len!r}")
        if padded_sampling not in PADDED_SAMPLING_MODES:
            raise ValueError(f"padded_sampling must be one of {PADDED_SAMPLING_MODES}, got {padded_sampling!r}")
        self.items_per_epoch = items_per_epoch
        self.max_seq_len = max_seq_len
        self.padded_sampling = padded_sampling
        self.has_edit_rights = has_edit_rights
        self.configured = True

    def configure_from_experiment(self, experiment) -> None:
        """items_per_epoch = train_batches_per_epoch · batch_size · num_processes.

        Edit rights come from ``experiment.has_dset_edit_rights`` when the experiment has that field
        (AMAGO's name), otherwise True.
        """
        self.configure(
            items_per_epoch=experiment.train_batches_per_epoch
            * experiment.batch_size
            * experiment.accelerator.num_processes,
            max_seq_len=experiment.max_seq_len,
            padded_sampling=experiment.padded_sampling,
            has_edit_rights=getattr(experiment, "has_dset_edit_rights", True),
        )

    def _require_configured(self) -> None:
        if not self.configured:
            raise ValueError(
                f"{type(self).__name__} is not configured: call configure(...) or configure_from_experiment(exp) first"
            )

    def __len__(self) -> int:
        self._require_configured()
        return self.items_per_epoch

    def __getitem__(self, i) -> RLData:
        self._require_configured()
        return self.random_slice(self.sample_random_trajectory(), self.max_seq_len, self.padded_sampling)

    @abc.abstractmethod
    def sample_random_trajectory(self) -> RLData:
        """One whole trajectory, drawn at random."""

    @property
    def save_new_trajs_to(self) -> Optional[str]:
        """Directory where environments should write new trajectories (None: do not save)."""
        return None

    def get_description(self) -> str:
        return f"{type(self).__name__}(name={self.dset_name!r})"

    @property
    def ready_for_training(self) -> bool:
        return self.configured

    def on_end_of_collection(self, experiment) -> dict:
        """Hook called after each data-collection phase; returns metrics to log."""
        return {}

    @staticmethod
    def random_slice(traj: RLData, length: int, padded_sampling: str = "none") -> RLData:
        """Cut a window of at most ``length`` transitions (``length``+1 observations) from ``traj``.

        With N = len(traj) transitions and L = length: if N ≤ L the trajectory is returned whole.
        Otherwise start is drawn uniformly from (upper bound exclusive)

            "none"  [0, N−L+1)      "both"  [−L+1, N−1)
            "left"  [−L+1, N−L+1)   "right" [0, N−1)

        then stop = start + L, start ← max(start, 0); obs, rl2s, time_idxs are sliced
        [start, stop+1) and rews, dones, actions [start, stop). "left"/"right"/"both" produce
        shorter windows at the episode edges. rl2s and time_idxs keep their real values.
        """
        if padded_sampling not in PADDED_SAMPLING_MODES:
            raise ValueError(f"padded_sampling must be one of {PADDED_SAMPLING_MODES}, got {padded_sampling!r}")
        N, L = len(traj), length
        if N <= L:
            return traj
        low, high = {
            "none": (0, N - L + 1),
            "both": (-L + 1, N - 1),
            "left": (-L + 1, N - L + 1),
            "right": (0, N - 1),
        }[padded_sampling]
        start = random.randrange(low, high)
        stop = start + L
        start = max(start, 0)
        return RLData(
            obs={k: v[start : stop + 1] for k, v in traj.obs.items()},
            rews=traj.rews[start:stop],
            dones=traj.dones[start:stop],
            actions=traj.actions[start:stop],
            time_idxs=traj.time_idxs[start : stop + 1],
            rl2s=traj.rl2s[start : stop + 1],
        )


class MixtureOfDatasets(RLDataset):
    """Draw each item from one of several child datasets, chosen at random by weight.

    Weights must sum to 1. Each item draws a child with probability w_i / Σ_{ready j} w_j,
    i.e. renormalised over the children that are currently ``ready_for_training``. Configuring
    the mixture configures every child with the same settings; windows are cut by the mixture.
    At most one child may ask environments to save trajectories (`save_new_trajs_to`).
    """

    def __init__(self, datasets: list, sampling_weights: list, dset_name: Optional[str] = None):
        super().__init__(dset_name=dset_name)
        if not datasets or not all(isinstance(d, RLDataset) for d in datasets):
            raise TypeError("MixtureOfDatasets.datasets must be a non-empty list of RLDataset")
        if len(sampling_weights) != len(datasets):
            raise ValueError(
                f"MixtureOfDatasets got {len(datasets)} datasets but {len(sampling_weights)} sampling_weights"
            )
        weights = [float(w) for w in sampling_weights]
        if any(w < 0 for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
            raise ValueError(
                f"MixtureOfDatasets.sampling_weights must be non-negative and sum to 1, got {sampling_weights} "
                f"(sum {sum(weights):.6g})"
            )
        savers = [d for d in datasets if d.save_new_trajs_to is not None]
        if len(savers) > 1:
            raise ValueError("at most one dataset in a MixtureOfDatasets may set save_new_trajs_to")
        self.datasets = list(datasets)
        self.sampling_weights = weights
        self.names = [d.dset_name if d.dset_name is not None else f"dataset_{i}" for i, d in enumerate(datasets)]

    def configure(self, items_per_epoch, max_seq_len, padded_sampling="none", has_edit_rights=True) -> None:
        super().configure(items_per_epoch, max_seq_len, padded_sampling, has_edit_rights)
        for d in self.datasets:
            d.configure(items_per_epoch, max_seq_len, padded_sampling, has_edit_rights)

    def current_weights(self) -> list:
        """Sampling probability of each child now (0 for children that are not ready)."""
        raw = [w if d.ready_for_training else 0.0 for d, w in zip(self.datasets, self.sampling_weights)]
        total = sum(raw)
        return [w / total for w in raw] if total > 0 else [0.0] * len(raw)

    @property
    def ready_for_training(self) -> bool:
        return self.configured and sum(self.current_weights()) > 0

    def sample_random_trajectory(self) -> RLData:
        weights = self.current_weights()
        if sum(weights) == 0:
            raise ValueError("MixtureOfDatasets: no child dataset with positive weight is ready_for_training")
        (child,) = random.choices(self.datasets, weights=weights, k=1)
        return child.sample_random_trajectory()

    @property
    def save_new_trajs_to(self) -> Optional[str]:
        for d in self.datasets:
            if d.save_new_trajs_to is not None:
                return d.save_new_trajs_to
        return None

    def get_description(self) -> str:
        parts = ", ".join(
            f"{n} (w={w:.3f}): {d.get_description()}"
            for n, w, d in zip(self.names, self.sampling_weights, self.datasets)
        )
        return f"MixtureOfDatasets[{parts}]"

    def on_end_of_collection(self, experiment) -> dict:
        """Children's metrics plus "{name} Current Sample Weight" for every child."""
        metrics = {}
        for d in self.datasets:
            metrics.update(d.on_end_of_collection(experiment))
        for name, w in zip(self.names, self.current_weights()):
            metrics[f"{name} Current Sample Weight"] = w
        return metrics


class DoNothingDataset(RLDataset):
    """A dataset that is never ready for training (for evaluation-only experiments)."""

    @property
    def ready_for_training(self) -> bool:
        return False

    def sample_random_trajectory(self) -> RLData:
        raise ValueError("DoNothingDataset holds no trajectories; it is never ready_for_training")
