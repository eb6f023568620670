"""metamon's ``metamon.rl.metamon_to_amago`` import path re-exports the bridge classes."""

import gin
import pytest

import metamon.rl.metamon_to_amago as metamon_to_amago
from metamon.rl.actors import MetamonMaskedActor, MetamonMaskedResidualActor
from metamon.rl.dataset import MetamonAMAGODataset
from metamon.rl.experiment import MetamonAMAGOExperiment
from metamon.rl.perceiver_tstep_encoder import MetamonPerceiverTstepEncoder
from metamon.rl.policy_dists import MetamonDiscrete
from metamon.rl.safe_gin import parse_untrusted_gin
from metamon.rl.tstep_encoders import MetamonTstepEncoder

DEFINED = {
    "MetamonAMAGODataset": MetamonAMAGODataset,
    "MetamonAMAGOExperiment": MetamonAMAGOExperiment,
    "MetamonMaskedActor": MetamonMaskedActor,
    "MetamonMaskedResidualActor": MetamonMaskedResidualActor,
    "MetamonTstepEncoder": MetamonTstepEncoder,
    "MetamonPerceiverTstepEncoder": MetamonPerceiverTstepEncoder,
    "MetamonDiscrete": MetamonDiscrete,
}


@pytest.mark.parametrize("name", sorted(DEFINED))
def test_each_name_is_the_class_of_its_own_module(name):
    assert getattr(metamon_to_amago, name) is DEFINED[name]


def test_all_lists_exactly_the_reexports():
    assert sorted(metamon_to_amago.__all__) == sorted(DEFINED)


def test_metamon_style_import_statement():
    from metamon.rl.metamon_to_amago import (  # noqa: F401  (the import itself is the test)
        MetamonAMAGODataset,
        MetamonAMAGOExperiment,
        MetamonMaskedActor,
        MetamonTstepEncoder,
    )


def test_a_run_gin_may_import_it_and_bind_by_class_name():
    text = "import metamon.rl.metamon_to_amago\nMetamonMaskedActor.d_hidden = 17\n"
    try:
        parse_untrusted_gin(text, "user.gin")
        assert gin.query_parameter("MetamonMaskedActor.d_hidden") == 17
    finally:
        gin.clear_config()
