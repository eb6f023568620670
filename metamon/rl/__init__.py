"""``metamon.rl``: where Pokémon meets the sequence-RL core in :mod:`metamon.amago`.

Modules (import the one you need; this package file imports nothing heavy):

* :mod:`metamon.rl.tstep_encoders` - the turn encoders, which turn one tokenized observation
  (``"text_tokens"``, ``"numbers"``) plus the previous action/reward into one vector per
  timestep: metamon's ``MetamonTstepEncoder`` and ``MetamonPerceiverTstepEncoder`` (published
  checkpoints load into them) and this project's own ``ScratchTstepEncoder``.
* :mod:`metamon.rl.actors` - ``MetamonMaskedActor`` / ``MetamonMaskedResidualActor``: actor heads
  that never pick an action the observation marks illegal (``"illegal_actions"``).
* :mod:`metamon.rl.dataset` - ``MetamonAMAGODataset``: parsed-replay trajectories as AMAGO
  ``RLData`` (adds ``"illegal_actions"`` and ``"missing_action_mask"`` to the observations),
  and ``obs_gym_space`` for the matching observation space.

Gin configurations for these classes ship inside the package: :data:`MODEL_CONFIG_DIR`
(``metamon/configs/models/``) and :data:`TRAINING_CONFIG_DIR` (``metamon/configs/training/``),
and so do ``accelerate launch --config_file`` files (:data:`ACCELERATE_CONFIG_DIR`,
``metamon/configs/accelerate/``: ``single_gpu``, ``multi_gpu``, ``deepspeed_zero2``,
``deepspeed_zero3``, ``cpu``), all located through :mod:`importlib.resources` so that a wheel
install finds them as a checkout does.
``python -m metamon.rl.train`` resolves bare names (``small_agent.gin``, ``il``) in these folders.

Bad input to this package raises :class:`MetamonRLError` (a :class:`~metamon.errors.MetamonError`
and a ``ValueError``) with a message that names the input and says what to do.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from metamon.errors import MetamonError

# pip installs packages unpacked, so the package's resources are a real folder (not a zip member).
_CONFIG_ROOT = Path(str(files("metamon").joinpath("configs")))
MODEL_CONFIG_DIR = _CONFIG_ROOT / "models"
TRAINING_CONFIG_DIR = _CONFIG_ROOT / "training"
ACCELERATE_CONFIG_DIR = _CONFIG_ROOT / "accelerate"  # `accelerate launch --config_file` YAMLs


class MetamonRLError(MetamonError, ValueError):
    """Bad input to the metamon <-> AMAGO bridge (a missing observation key, a wrong shape, a
    dataset or space that does not fit); the message names it."""


# Observation keys the bridge adds to metamon's observations.
ILLEGAL_ACTIONS_KEY = "illegal_actions"  # bool (A,), True = illegal; read by the masked actors
MISSING_ACTION_MASK_KEY = "missing_action_mask"  # bool (1,), dataset only: the action was unrevealed

__all__ = [
    "ACCELERATE_CONFIG_DIR",
    "ILLEGAL_ACTIONS_KEY",
    "MISSING_ACTION_MASK_KEY",
    "MODEL_CONFIG_DIR",
    "MetamonRLError",
    "TRAINING_CONFIG_DIR",
]
