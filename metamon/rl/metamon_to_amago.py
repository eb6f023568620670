"""metamon's import path for the metamon <-> AMAGO bridge: ``from metamon.rl.metamon_to_amago
import MetamonAMAGOExperiment, MetamonTstepEncoder, ...`` works as in metamon.

metamon defines these classes in one module; here each lives in its own module of
:mod:`metamon.rl` and this module re-exports them (the same objects, so ``isinstance`` checks and
gin bindings by class name such as ``MetamonTstepEncoder.d_model`` behave the same whichever
path imported them):

* ``MetamonAMAGOExperiment``: :mod:`metamon.rl.experiment`
* ``MetamonAMAGODataset``: :mod:`metamon.rl.dataset`
* ``MetamonTstepEncoder``: :mod:`metamon.rl.tstep_encoders`
* ``MetamonPerceiverTstepEncoder``: :mod:`metamon.rl.perceiver_tstep_encoder`
* ``MetamonMaskedActor``, ``MetamonMaskedResidualActor``: :mod:`metamon.rl.actors`
* ``MetamonDiscrete``: :mod:`metamon.rl.policy_dists`

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
from metamon.rl.perceiver_tstep_encoder import MetamonPerceiverTstepEncoder
from metamon.rl.policy_dists import MetamonDiscrete
from metamon.rl.tstep_encoders import MetamonTstepEncoder

__all__ = [
    "MetamonAMAGODataset",
    "MetamonAMAGOExperiment",
    "MetamonMaskedActor",
    "MetamonDiscrete",
    "MetamonMaskedResidualActor",
    "MetamonPerceiverTstepEncoder",
    "MetamonTstepEncoder",
]
