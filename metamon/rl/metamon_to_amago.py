"""metamon's import path for the metamon <-> AMAGO bridge: ``from metamon.rl.metamon_to_amago
import MetamonAMAGOExperiment, MetamonTstepEncoder, ...`` works as in metamon.

metamon defines these classes in one module; here each lives in its own module of
:mod:`metamon.rl` and this module re-exports them (the same objects, so ``isinstance`` checks and
gin bindings by class name such as ``MetamonTstepEncoder.d_model`` behave the same whichever
path imported them):

==============================  =====================================================
name                            defined in
==============================  =====================================================
``MetamonAMAGOExperiment``      :mod:`metamon.rl.experiment`
``MetamonAMAGODataset``         :mod:`metamon.rl.dataset`
``MetamonTstepEncoder``         :mod:`metamon.rl.tstep_encoders`
``MetamonMaskedActor``          :mod:`metamon.rl.actors`
``MetamonMaskedResidualActor``  :mod:`metamon.rl.actors`
==============================  =====================================================

A gin file may ``import metamon.rl.metamon_to_amago`` to register all of them at once (the
import is allowed by :mod:`metamon.rl.safe_gin`). metamon's environment factories
(``make_baseline_env``, ``make_local_ladder_env``, ``MetamonAMAGOWrapper``, ...) have no
counterpart here: agents play as poke-env players (:mod:`metamon.rl.player`) and the gymnasium
envs live in :mod:`metamon.env`.
"""

from __future__ import annotations

from metamon.rl.actors import MetamonMaskedActor, MetamonMaskedResidualActor
from metamon.rl.dataset import MetamonAMAGODataset
from metamon.rl.experiment import MetamonAMAGOExperiment
from metamon.rl.tstep_encoders import MetamonTstepEncoder

__all__ = [
    "MetamonAMAGODataset",
    "MetamonAMAGOExperiment",
    "MetamonMaskedActor",
    "MetamonMaskedResidualActor",
    "MetamonTstepEncoder",
]
