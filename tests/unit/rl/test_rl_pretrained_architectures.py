"""Every published model of the registry builds here and loads a metamon-format checkpoint.

* With its real widths and spaces (parameters on the ``meta`` device, no memory): the state-dict
  key counts and element counts that metamon's own code builds (metamon_models.md §1 and §11.1),
  the embedding rows V+1, the numeric input N+E, the text width W of the observation space.
* At reduced width (same classes, key names, heads, tokens and spaces): the agent built through
  the registry, saved the way metamon saves (``torch.save(agent.state_dict(), ...)`` into
  ``{repo}/{hub_dir}/ckpts/policy_weights/policy_epoch_{N}.pt``), loaded back through the
  registry code path from that local folder (strict), gives the same action logits.
"""

import warnings

import pytest
import torch
from _pretrained_helpers import (
    fake_metamon_vocabularies,
    observation_sequence,
    policy_logits,
    save_metamon_checkpoint,
    shrunk,
)

from metamon.rl.pretrained import PRETRAINED_MODELS, get_pretrained_model, get_pretrained_model_names
from metamon.rl.run_dir import build_spaces

# (key count, element count) of metamon's agents (reference §1 key counts, §11.1 element counts;
# None where the reference gives none)
SMALL_IL, SMALL_RL = (168, 13_710_981), (168, 13_938_567)
MEDIUM_RL = (252, 50_557_507)
LARGE_RL, SYNTHETIC_V1, SYNTHETIC_V2 = (360, 194_792_947), (360, 200_498_029), (360, 200_894_911)
ABRA, KADABRA2, KADABRA4, SUPERKAZAM = (252, 57_608_879), (378, 60_551_947), (512, 75_988_431), (642, 142_832_563)
EXPECTED = {
    "SmallIL": SMALL_IL, "SmallILFA": SMALL_IL, "SmallRL": SMALL_RL, "SmallRL_ExtremeFilter": SMALL_RL,
    "SmallRL_BinaryFilter": SMALL_RL, "SmallRL_Aug": SMALL_RL, "SmallRL_MaxQ": SMALL_RL,
    "MediumIL": (252, None), "MediumRL": MEDIUM_RL, "MediumRL_Aug": MEDIUM_RL, "MediumRL_MaxQ": MEDIUM_RL,
    "LargeIL": (360, None), "LargeRL": LARGE_RL, "SyntheticRLV0": SYNTHETIC_V1, "SyntheticRLV1": SYNTHETIC_V1,
    "SyntheticRLV1_SelfPlay": SYNTHETIC_V1, "SyntheticRLV1_PlusPlus": SYNTHETIC_V1, "SyntheticRLV2": SYNTHETIC_V2,
    "SmallRLGen9Beta": (168, 14_127_107), "Abra": ABRA, "Kadabra": ABRA, "Minikazam": (134, 4_761_813),
    "Kadabra2": KADABRA2, "Kadabra3": KADABRA2, "Kadabra4": KADABRA4, "Alakazam": KADABRA4,
    "Superkazam": SUPERKAZAM, "Kakuna": SUPERKAZAM,
}
# (W text words, N numbers, V vocabulary) of the inputs
PAPER_INPUTS, GEN9_INPUTS = (87, 48, 1407), (106, 55, 2541)
PUBLISHED = list(EXPECTED)


@pytest.fixture(autouse=True)
def vocabularies(tmp_path, monkeypatch):
    fake_metamon_vocabularies(tmp_path / "cache", monkeypatch)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="flash_attn or CUDA is not available")
        yield


def test_every_published_model_is_covered():
    assert set(PUBLISHED) <= set(get_pretrained_model_names())


@pytest.mark.parametrize("name", PUBLISHED)
def test_builds_with_real_widths_and_spaces(name):
    model = get_pretrained_model(name)
    shapes = model.architecture_shapes()
    keys, elements = EXPECTED[name]
    assert len(shapes) == keys
    if elements is not None:
        assert sum(torch.Size(s).numel() for s in shapes.values()) == elements
    words, numbers, vocab = GEN9_INPUTS if model.tokenizer == "DefaultObservationSpace-v1" else PAPER_INPUTS
    obs_space, action_space, _ = build_spaces(model.run_info())
    assert obs_space.gym_space["text_tokens"].shape == (words,)
    assert obs_space.gym_space["numbers"].shape == (numbers,)
    text_rows, d = shapes["tstep_encoder.turn_embedding.token_embedding.text_emb.weight"]
    assert text_rows == vocab + 1
    n_actions = action_space.gym_space.n
    assert shapes["tstep_encoder.extra_emb.weight"][1] == n_actions + 1
    extra = shapes["tstep_encoder.extra_emb.weight"][0]
    assert shapes["tstep_encoder.turn_embedding.multimodal_fuse.num_emb.weight"][1] == numbers + extra


def _architectures() -> list:
    """One registry name per distinct (model gin, training gin, spaces, tokenizer, overrides)."""
    seen, names = set(), []
    for name in PRETRAINED_MODELS:
        if name not in EXPECTED:
            continue
        m = get_pretrained_model(name)
        key = (m.model_gin_config, m.train_gin_config, m.observation_space, m.action_space, m.tokenizer,
               repr(sorted(m.gin_overrides.items())))
        if key not in seen:
            seen.add(key)
            names.append(name)
    return names


@pytest.mark.parametrize("name", _architectures())
def test_a_saved_checkpoint_loads_through_the_registry_with_the_same_logits(name, tmp_path):
    repo = tmp_path / "repo"
    model = shrunk(get_pretrained_model(name), tmp_path / "gin", repo)
    torch.manual_seed(0)
    reference, info = model._build()
    epoch = model.default_checkpoint
    save_metamon_checkpoint(reference, repo, model.model_name, epoch)
    loaded = model.initialize_agent()  # the entry's default epoch, from the local folder, strict
    assert not loaded.training
    own, ref = loaded.state_dict(), reference.state_dict()
    assert own.keys() == ref.keys() and all(torch.equal(own[k], ref[k]) for k in own)
    batch = observation_sequence(info, length=40)  # longer than the (32, 0) window of the windowed entries
    expected = policy_logits(reference, *batch)
    assert torch.equal(policy_logits(loaded, *batch), expected)
    torch.manual_seed(1)
    assert not torch.equal(policy_logits(model.initialize_agent(checkpoint=0), *batch), expected)
