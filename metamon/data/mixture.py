"""``MixtureOfDatasets``: draw each trajectory from one of several datasets, by weight.

With weights ``w`` the probability of drawing from dataset ``i`` is ``p_i = w_i / sum(w)``; the
item inside the chosen dataset is uniform. ``train --custom_replay_dir D
--custom_replay_sample_weight w`` mixes the main replays and ``D`` as
``MixtureOfDatasets([main, custom], [1 - w, w])``: the source is drawn per trajectory, not per
batch, so a batch of B trajectories holds about ``w * B`` custom ones.

Two ways to draw, both seeded by ``seed``:

* :meth:`MixtureOfDatasets.random_sample` makes a fresh independent draw each call (the way an
  offline-RL loader samples trajectories). Its generator is ``random.Random(seed)`` in the main
  process; inside a torch DataLoader worker it is re-seeded from ``(seed, worker seed)``, so
  workers never repeat each other's draws.
* ``mixture[idx]`` (map-style, for a DataLoader with a sampler) is a pure function of
  ``(seed, epoch, idx)`` (:meth:`~MixtureOfDatasets.choose`): every index is its own draw, the
  same in every worker; call :meth:`~MixtureOfDatasets.set_epoch` to draw a new epoch.

Randomness *inside* a dataset's item (e.g. ``ParsedReplayDataset``'s window start) is the
dataset's own.
"""

from __future__ import annotations

import bisect
import math
import random
from itertools import accumulate
from typing import Optional, Sequence

from torch.utils.data import Dataset, get_worker_info

from metamon.errors import MetamonError

__all__ = ["MixtureOfDatasets"]


class MixtureOfDatasets(Dataset):
    """A weighted mixture of datasets (anything with ``len()`` and integer indexing).

    Args:
        datasets: the components.
        weights: one finite, non-negative weight per dataset, not all zero; normalised to
            ``probabilities``. A zero weight turns a dataset off.
        seed: a non-negative int seeding both ways of drawing (module docstring).

    ``len(mixture) = ceil(max_i len(datasets[i]) / p_i)`` over the datasets with ``p_i > 0``:
    the number of draws after which every component has, in expectation, been drawn as many
    times as it has items (one "epoch" of the slowest-covered component). It grows with the
    components (e.g. after ``refresh_files()``). Draws are with replacement.

    ``draw_counts[i]`` counts the items taken from dataset ``i`` by this process, so the
    empirical mixture can be logged against ``probabilities``.
    """

    def __init__(self, datasets: Sequence, weights: Sequence[float], seed: int = 0):
        datasets, weights = list(datasets), list(weights)
        if not datasets:
            raise MetamonError("MixtureOfDatasets needs at least one dataset")
        if len(weights) != len(datasets):
            raise MetamonError(f"{len(datasets)} datasets but {len(weights)} weights {weights}")
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise MetamonError(f"mixture weights must be finite numbers >= 0, got {weights}")
        total = float(sum(weights))
        if total <= 0:
            raise MetamonError(f"mixture weights must not all be zero, got {weights}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise MetamonError(f"seed must be an int >= 0, got {seed!r}")
        self.datasets = datasets
        self.probabilities = [w / total for w in weights]
        self._cumulative = list(accumulate(self.probabilities))
        self.seed = seed
        self.epoch = 0
        self.draw_counts = [0] * len(datasets)
        self._rng: Optional[random.Random] = None
        self._rng_owner = None  # (worker id, worker seed) the generator was seeded for

    def __len__(self) -> int:
        return max(
            math.ceil(len(d) / p) for d, p in zip(self.datasets, self.probabilities) if p > 0
        )

    def set_epoch(self, epoch: int) -> None:
        """Make ``mixture[idx]`` draw from ``(seed, epoch, idx)``."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise MetamonError(f"epoch must be an int >= 0, got {epoch!r}")
        self.epoch = epoch

    def _draw(self, rng: random.Random) -> tuple[int, int]:
        """Dataset ``i`` with probability ``p_i``, then an index uniform in ``range(len(datasets[i]))``."""
        # min() guards against the last cumulative sum rounding to just below 1.0
        i = min(bisect.bisect_right(self._cumulative, rng.random()), len(self.datasets) - 1)
        while self.probabilities[i] == 0:  # only reachable through that rounding
            i -= 1
        size = len(self.datasets[i])
        if size == 0:
            raise MetamonError(f"dataset {i} of the mixture (probability {self.probabilities[i]:.3f}) is empty")
        return i, rng.randrange(size)

    def choose(self, idx: int) -> tuple[int, int]:
        """``(dataset i, index j)`` of ``mixture[idx]``, a pure function of ``(seed, epoch, idx)``."""
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise IndexError(f"mixture index must be an int >= 0, got {idx!r}")
        return self._draw(random.Random(f"{self.seed}:{self.epoch}:{idx}"))

    def __getitem__(self, idx: int):
        if not 0 <= idx < len(self):
            raise IndexError(f"index {idx} is out of range for a mixture of length {len(self)}")
        return self._take(*self.choose(idx))

    def random_sample(self, rng: Optional[random.Random] = None):
        """A fresh draw using ``rng``, or this process's generator (module docstring)."""
        return self._take(*self._draw(rng or self._process_rng()))

    def _take(self, i: int, j: int):
        self.draw_counts[i] += 1
        return self.datasets[i][j]

    def _process_rng(self) -> random.Random:
        info = get_worker_info()
        owner = None if info is None else (info.id, info.seed)
        if self._rng is None or owner != self._rng_owner:
            self._rng = random.Random(self.seed if info is None else f"{self.seed}:{info.seed}")
            self._rng_owner = owner
        return self._rng
