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

``run_name`` is the last component of ``root``: one folder name (:func:`run_name_problem` says
why a name is not one; :meth:`RunLayout.of` refuses it). Other layers may add their own files
next to ``ckpts/`` (the metamon run directory adds ``run.json`` and ``config.gin``).

**The checkpoint of an epoch appears all at once.** It is two things, the training state and the
weights file, published in this order (``Experiment.save_checkpoint``):

1. the epoch's old weights file, if any, is deleted (an epoch saved again);
2. the training state is written into a staging directory and renamed into place (atomic, see
   :mod:`metamon.amago.checkpoints`);
3. the weights file is written (atomic): it commits the epoch.

So every epoch listed by :meth:`weight_epochs` has a complete training state saved with the same
weights. A writer killed after step 2 leaves a complete training state without weights: it still
counts as a checkpoint (a new run refuses the folder, ``--ckpt N`` resumes it), and
:meth:`recover` finishes the commit by writing the weights from the state's ``model.safetensors``.
:meth:`recover` (run by ``Experiment.start`` on the main process) also removes the temporary files
and staging directories of writers that died before this process started
(:data:`PROCESS_STARTED`).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from metamon.amago.checkpoints import (
    MODEL_FILE,
    is_complete,
    recover_training_states,
    remove_stale_temp_files,
)
from metamon.amago.utils import AmagoError
from metamon.files import atomic_path

__all__ = ["RunLayout", "run_name_problem", "PROCESS_STARTED"]

_WEIGHTS_NAME = re.compile(r"policy_epoch_(\d+)\.safetensors")

PROCESS_STARTED = time.time()
"""When this process imported the module: leftovers of interrupted writes older than this belong
to a process that is gone (:meth:`RunLayout.recover`)."""


def run_name_problem(name) -> Optional[str]:
    """Why ``name`` cannot name a run (a single folder inside the save directory), or None.

    Refused: a non-string or empty name, ``.`` and ``..``, any path separator (``/`` or ``\\``,
    whatever the OS), a drive (``C:``), an absolute path, a NUL character."""
    if not isinstance(name, str) or name == "":
        return "it is empty"
    if name in (".", ".."):
        return f"{name!r} names no folder of its own"
    if "\x00" in name:
        return "it contains a NUL character"
    if os.path.isabs(name):
        return "it is an absolute path"
    if any(sep in name for sep in ("/", "\\", os.sep, os.altsep) if sep):
        return "it contains a path separator"
    if os.path.splitdrive(name)[0]:
        return "it names a drive"
    return None


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run directory ``root`` (module docstring). Nothing is created or read here
    except by :meth:`weight_epochs` / :meth:`training_state_epochs`, which list what exists, and
    :meth:`recover`, which cleans up after interrupted writers."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of(cls, base_dir: Union[str, os.PathLike], run_name: str) -> "RunLayout":
        """The layout of ``{base_dir}/{run_name}``; :class:`AmagoError` when ``run_name`` is not
        one folder name (:func:`run_name_problem`)."""
        problem = run_name_problem(run_name)
        if problem is not None:
            raise AmagoError(f"run_name {run_name!r} must be one folder name inside {base_dir}: {problem}")
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

    def checkpoint_epochs(self) -> list[int]:
        """Sorted epochs with anything saved: weights, a complete training state, or both."""
        return sorted(set(self.weight_epochs()) | set(self.training_state_epochs()))

    def recover(self, before: Optional[float] = None) -> list[str]:
        """Clean up after writers that died before ``before`` (default :data:`PROCESS_STARTED`)
        and finish their commits (module docstring); returns one line per action.

        Removes stale ``.*.tmp`` files in the run's folders, finishes or undoes interrupted
        training-state saves (:func:`~metamon.amago.checkpoints.recover_training_states`), then
        writes the weights file of every epoch whose training state is complete but whose weights
        are missing (a copy of the state's ``model.safetensors``). Call it when no other process
        writes to this run."""
        before = PROCESS_STARTED if before is None else before
        actions = []
        folders = (self.root, self.ckpts, self.policy_weights_dir, self.latest_weights.parent, self.metrics_csv.parent)
        for folder in folders:
            actions += [f"removed {folder.name}/{name}" for name in remove_stale_temp_files(folder, before)]
        actions += recover_training_states(self.training_states_dir, before)
        with_weights = set(self.weight_epochs())
        for epoch in self.training_state_epochs():
            if epoch not in with_weights:
                with atomic_path(self.policy_weights(epoch)) as tmp:
                    shutil.copyfile(self.training_state(epoch) / MODEL_FILE, tmp)
                actions.append(f"wrote {self.policy_weights(epoch).name} from its training state")
        return actions


def _epochs(folder: Path, pattern: re.Pattern) -> list[int]:
    if not folder.is_dir():
        return []
    found = (pattern.fullmatch(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)
