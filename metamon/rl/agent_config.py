"""Apply a metamon agent's gin configuration, the same way for training and for loading.

``configure_agent(gin_files, params=None, bindings=(), tokenizer=None, untrusted=False)``:

1. ``gin.clear_config()``; bind ``params`` (``{"X.y": value}``), parse ``gin_files`` in order,
   then the ``bindings`` strings (``"X.y = z"``): later ones win (``amago.cli_utils.use_config``,
   not finalized). Every configurable of ``metamon.rl`` is registered first, so files need no
   ``import`` line for them. ``untrusted=True`` (a run folder's ``config.gin``, anything
   downloaded) parses the files and binding strings with
   :func:`metamon.rl.safe_gin.use_untrusted_config`: only metamon's own modules may be imported
   and only its own configurables bound or referenced, anything else is refused naming
   ``file:line``. The default keeps full gin for the user's own files (training).
2. Read the agent's structure, the :data:`~metamon.amago.build.STRUCTURE_ARGS` the files bind on
   ``MetamonAMAGOExperiment`` (or ``Experiment``): ``max_seq_len``, ``tstep_encoder_type``,
   ``traj_encoder_type``, ``agent_type``. A missing one is an error naming the binding.
3. Give the timestep encoder the run's ``tokenizer``: when the configured encoder class takes a
   ``tokenizer`` argument and the configuration binds none, bind ``<Encoder>.tokenizer``.

Returns the structure as a dict, ready for :func:`metamon.amago.build.build_agent`.
"""

from __future__ import annotations

import inspect
import os
from typing import Optional, Sequence, Union

import gin

import metamon.rl.actors  # noqa: F401  (registers the masked actors with gin)
import metamon.rl.gemma_encoder  # noqa: F401  (registers GemmaTstepEncoder; peft/transformers load lazily)
import metamon.rl.tstep_encoders  # noqa: F401  (registers the turn encoders)
from metamon.amago.build import STRUCTURE_ARGS, bound_structure
from metamon.amago.cli_utils import use_config
from metamon.rl import MetamonRLError
from metamon.rl.experiment import MetamonAMAGOExperiment
from metamon.rl.safe_gin import use_untrusted_config

__all__ = ["configure_agent", "bind_tokenizer"]

TOKENIZER_PARAM = "tokenizer"


def configure_agent(
    gin_files: Sequence[Union[str, os.PathLike]],
    params: Optional[dict] = None,
    bindings: Sequence[str] = (),
    tokenizer: Optional[str] = None,
    *,
    untrusted: bool = False,
) -> dict:
    """Configure gin for one agent and return its structure (module docstring)."""
    gin.clear_config()
    if untrusted:
        use_untrusted_config(params, list(gin_files), list(bindings))
    else:
        use_config(params or {}, [str(f) for f in gin_files], finalize=False, bindings=list(bindings))
    structure = bound_structure(MetamonAMAGOExperiment)
    missing = [name for name in STRUCTURE_ARGS if name not in structure]
    if missing:
        raise MetamonRLError(
            f"the gin configuration ({', '.join(str(f) for f in gin_files)}) does not bind "
            f"{', '.join(f'MetamonAMAGOExperiment.{name}' for name in missing)}: the model gin file sets them"
        )
    bind_tokenizer(structure["tstep_encoder_type"], tokenizer)
    return structure


def bind_tokenizer(encoder_type, tokenizer: Optional[str]) -> None:
    """Bind ``<encoder_type>.tokenizer = tokenizer`` unless ``tokenizer`` is None, the encoder
    takes no ``tokenizer`` argument, is not gin-configurable, or the configuration binds one."""
    if tokenizer is None or TOKENIZER_PARAM not in inspect.signature(encoder_type).parameters:
        return
    try:
        bound = gin.get_bindings(encoder_type)
    except ValueError:  # not gin-configurable: nothing can be bound
        return
    if TOKENIZER_PARAM not in bound:
        gin.bind_parameter(f"{encoder_type.__module__}.{encoder_type.__qualname__}.{TOKENIZER_PARAM}", tokenizer)
