"""Runs saved before this project took metamon's encoder name still load.

Until the turn encoders took metamon's class names, this project's own encoder (now
:class:`~metamon.rl.scratch_tstep_encoder.ScratchTstepEncoder`) was called ``MetamonTstepEncoder``.
A run directory saved then has a ``config.gin`` that binds ``MetamonTstepEncoder`` (which is now
metamon's network, :class:`~metamon.rl.tstep_encoders.MetamonTstepEncoder`) and weights with the
old encoder's keys (``tstep_encoder.scratch``, ``tstep_encoder.token_emb.weight``, ...).

:func:`adopt_legacy_encoder` recognises such weights: when the configured encoder is
``MetamonTstepEncoder`` and the weights hold :data:`LEGACY_KEYS`, it copies every gin binding of
``MetamonTstepEncoder`` to ``ScratchTstepEncoder``, logs one warning naming the weights, and returns
``ScratchTstepEncoder`` to build instead. Anything else is returned unchanged. Used by
:func:`metamon.rl.run_dir.load_agent` and by ``train.py`` (``--init_from_checkpoint run:...``
and ``--ckpt`` resumes).
"""

from __future__ import annotations

import logging
from typing import Iterable

import gin

from metamon.rl.scratch_tstep_encoder import ScratchTstepEncoder
from metamon.rl.tstep_encoders import MetamonTstepEncoder

__all__ = ["LEGACY_KEYS", "holds_scratch_encoder", "adopt_legacy_encoder"]

logger = logging.getLogger(__name__)

LEGACY_KEYS = frozenset({"tstep_encoder.scratch", "tstep_encoder.token_emb.weight"})
"""Agent state-dict keys that only the scratch encoder has (metamon's encoders have neither)."""


def holds_scratch_encoder(weight_keys: Iterable[str]) -> bool:
    """Whether an agent state dict with these keys was saved with the scratch encoder."""
    return LEGACY_KEYS <= set(weight_keys)


def adopt_legacy_encoder(encoder_type: type, weight_keys: Iterable[str], source: str) -> type:
    """The encoder class to build for weights with ``weight_keys`` (module docstring); ``source``
    names the weights in the warning."""
    if encoder_type is not MetamonTstepEncoder or not holds_scratch_encoder(weight_keys):
        return encoder_type
    target = f"{ScratchTstepEncoder.__module__}.{ScratchTstepEncoder.__qualname__}"
    for name, value in gin.get_bindings(MetamonTstepEncoder).items():
        gin.bind_parameter(f"{target}.{name}", value)
    logger.warning(
        "%s was saved before this project's own turn encoder was renamed: its gin configuration "
        "binds MetamonTstepEncoder but its weights are ScratchTstepEncoder's; building "
        "ScratchTstepEncoder with the same bindings (write ScratchTstepEncoder in new gin files)",
        source,
    )
    return ScratchTstepEncoder
