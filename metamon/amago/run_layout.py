"""The run-directory layout, defined once: where an :class:`~metamon.amago.experiment.Experiment`
writes its checkpoints and logs, and where loaders find them.

::

    {root}/                                    root = {ckpt_base_dir}/{run_name}
        ckpts/config.txt                               operative gin config
        ckpts/policy_weights/policy_epoch_{N}.safetensors   Agent state dict after epoch N
        ckpts/training_states/{run_name}_epoch_{N}/    full training state (checkpoints.py)
        ckpts/latest/policy.safetensors                newest weights
        logs/metrics.csv                               every logged metric
        wandb_logs/                                    only when logging to wandb

``run_name`` is the last component of ``root``. Other layers may add their own files next to
``ckpts/`` (the metamon run directory adds ``run.json`` and ``config.gin``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from metamon.amago.checkpoints import is_complete

__all__ = ["RunLayout"]

_WEIGHTS_NAME = re.compile(r"policy_epoch_(\d+)\.safetensors")


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run directory ``root`` (module docstring). Nothing is created or read here
    except by :meth:`weight_epochs` / :meth:`training_state_epochs`, which list what exists."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of(cls, base_dir: Union[str, os.PathLike], run_name: str) -> "RunLayout":
        """The layout of ``{base_dir}/{run_name}``."""
        return cls(Path(base_dir) / run_name)

    @property
    def run_name(self) -> str:
        return self.root.name

    @property
    def ckpts(self) -> Path:
        return self.root / "ckpts"

    @property
    def config_txt(self) -> Path:
        return self.ckpts / "config.txt"

    @property
    def policy_weights_dir(self) -> Path:
        return self.ckpts / "policy_weights"

    @property
    def training_states_dir(self) -> Path:
        return self.ckpts / "training_states"

    @property
    def latest_weights(self) -> Path:
        return self.ckpts / "latest" / "policy.safetensors"

    @property
    def metrics_csv(self) -> Path:
        return self.root / "logs" / "metrics.csv"

    @property
    def wandb_dir(self) -> Path:
        return self.root / "wandb_logs"

    def policy_weights(self, epoch: int) -> Path:
        """``ckpts/policy_weights/policy_epoch_{epoch}.safetensors``."""
        return self.policy_weights_dir / f"policy_epoch_{epoch}.safetensors"

    def training_state(self, epoch: int) -> Path:
        """``ckpts/training_states/{run_name}_epoch_{epoch}``."""
        return self.training_states_dir / f"{self.run_name}_epoch_{epoch}"

    def weight_epochs(self) -> list[int]:
        """Sorted epochs N that have ``policy_epoch_{N}.safetensors``."""
        return _epochs(self.policy_weights_dir, _WEIGHTS_NAME)

    def training_state_epochs(self) -> list[int]:
        """Sorted epochs N whose training state is complete (``checkpoints.is_complete``)."""
        pattern = re.compile(re.escape(self.run_name) + r"_epoch_(\d+)")
        return [e for e in _epochs(self.training_states_dir, pattern) if is_complete(self.training_state(e))]


def _epochs(folder: Path, pattern: re.Pattern) -> list[int]:
    if not folder.is_dir():
        return []
    found = (pattern.fullmatch(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)
