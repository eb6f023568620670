"""metamon.rl.pretrained: the registry, checkpoints in metamon's layout, local models, the
``pretrained:`` player kind and the ``list`` command (tiny models; no network)."""

import json
import warnings
from pathlib import Path

import huggingface_hub
import pytest
import torch
from _pretrained_helpers import (
    TINY_TOKENIZER,
    observation_sequence,
    policy_logits,
    save_metamon_checkpoint,
    tiny_model,
    write_tiny_gin,
)
from _tiny_gin import tiny_agent_gin

from metamon.amago.checkpoints import save_weights
from metamon.amago.nets.transformer import FlashAttention, VanillaAttention
from metamon.battles.spec import PlayerSpec, _builder, check_spec
from metamon.errors import MetamonError, UnknownNameError
from metamon.rl import TRAINING_CONFIG_DIR, MetamonRLError, pretrained
from metamon.rl.pretrained import (
    METAMON_HF_REPO,
    CheckpointNotFoundError,
    LocalFinetunedModel,
    LocalPretrainedModel,
    PretrainedModel,
    get_pretrained_model,
    get_pretrained_model_names,
    matching_pretrained_models,
    register_pretrained_model,
)
from metamon.rl.run_dir import CONFIG_FILE, RunInfo, build_agent, load_agent, policy_weights_path, write_run_files

PAPER = ["SmallIL", "SmallILFA", "SmallRL", "SmallRL_ExtremeFilter", "SmallRL_BinaryFilter", "SmallRL_Aug",
         "SmallRL_MaxQ", "MediumIL", "MediumRL", "MediumRL_Aug", "MediumRL_MaxQ", "LargeIL", "LargeRL",
         "SyntheticRLV0", "SyntheticRLV1", "SyntheticRLV1_SelfPlay", "SyntheticRLV1_PlusPlus", "SyntheticRLV2"]
GEN9 = ["SmallRLGen9Beta", "Abra", "Minikazam", "Kadabra", "Kadabra2", "Kadabra3", "Kadabra4", "Alakazam",
        "Superkazam", "Kakuna"]


@pytest.fixture(autouse=True)
def quiet_attention_fallback():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="flash_attn or CUDA is not available")
        yield


@pytest.fixture
def registered(monkeypatch):
    """Register models for one test only: ``registered(name, factory)``."""

    def add(name, factory):
        monkeypatch.setitem(pretrained.PRETRAINED_MODELS, name, factory)

    return add


def _saved_tiny(tmp_path, epochs=(2, 4), model_name="tiny-rl"):
    """A tiny model and the agent whose state dict was saved, metamon-style, for ``epochs``."""
    model = tiny_model(write_tiny_gin(tmp_path / "gin"), tmp_path / "repo", model_name)
    saved, _ = model._build()
    for epoch in epochs:
        save_metamon_checkpoint(saved, tmp_path / "repo", model_name, epoch)
    return model, saved


# ---------------------------------------------------------------------------------------------
# registry contents
# ---------------------------------------------------------------------------------------------


def test_every_published_model_is_registered_with_its_reference_fields():
    names = get_pretrained_model_names()
    assert set(PAPER + GEN9) <= set(names) and names == sorted(names)
    small = get_pretrained_model("SmallRL")
    assert (small.model_name, small.default_checkpoint, small.model_gin_config.name, small.train_gin_config.name) == (
        "small-rl", 40, "small_agent.gin", "exp_rl.gin")
    assert (small.tokenizer, small.observation_space, small.action_space, small.reward_function) == (
        "allreplays-v3", "DefaultObservationSpace", "MinimalActionSpace", "DefaultShapedReward")
    assert small.hf_repo_id == METAMON_HF_REPO and small.gin_overrides == {}
    v2 = get_pretrained_model("SyntheticRLV2")
    assert (v2.model_name, v2.default_checkpoint, v2.model_gin_config.stem, v2.train_gin_config.stem) == (
        "synthetic-rl-v2", 48, "synthetic_multitaskagent", "binary_rl")
    assert get_pretrained_model("SmallRL_ExtremeFilter").default_checkpoint == 38
    assert get_pretrained_model("SmallIL").train_gin_config.stem == "il"
    for name in PAPER:
        model = get_pretrained_model(name)
        assert (model.tokenizer, model.action_space, model.observation_space) == (
            "allreplays-v3", "MinimalActionSpace", "DefaultObservationSpace"), name
    for name in GEN9:
        model = get_pretrained_model(name)
        assert (model.tokenizer, model.action_space) == ("DefaultObservationSpace-v1", "DefaultActionSpace"), name
    for name in ("SmallRLGen9Beta", "Abra", "Kadabra"):
        assert get_pretrained_model(name).gin_overrides == {
            "TformerTrajEncoder.attention_type": FlashAttention, "FlashAttention.window_size": (32, 0)}, name
    kakuna = get_pretrained_model("Kakuna")
    assert (kakuna.model_name, kakuna.default_checkpoint, kakuna.model_gin_config.stem, kakuna.train_gin_config.stem,
            kakuna.reward_function, kakuna.observation_space) == (
        "kakuna", 34, "superkazam", "kakuna", "AggressiveShapedReward", "OpponentMoveObservationSpace")
    assert kakuna.gin_overrides == {"MetamonPerceiverTstepEncoder.tokenizer": "DefaultObservationSpace-v1"}
    assert get_pretrained_model("Kadabra").observation_space == "TeamPreviewObservationSpace"
    assert get_pretrained_model("Minikazam").observation_space == "PAC-OpponentMoveObservationSpace"
    # metamon's import path for entries: a class to instantiate (LocalFinetunedModel(SmallRL, ...))
    assert isinstance(pretrained.SmallRL(), PretrainedModel) and pretrained.SmallRL.__name__ == "SmallRL"


def test_unknown_model_names_the_registered_ones():
    with pytest.raises(UnknownNameError, match=r"Unknown pretrained model 'SmallRLL'\. Available: .*SmallRL,"):
        get_pretrained_model("SmallRLL")


def test_register_refuses_a_taken_name_unless_replacing(registered, tmp_path):
    registered("TinyReg", lambda: tiny_model(write_tiny_gin(tmp_path), tmp_path))
    with pytest.raises(MetamonRLError, match="'TinyReg' is already registered"):
        register_pretrained_model(lambda: None, "TinyReg")
    register_pretrained_model(lambda: "not a model", "TinyReg", replace=True)
    with pytest.raises(MetamonRLError, match="built a str, not a PretrainedModel"):
        get_pretrained_model("TinyReg")


def test_constructor_errors(tmp_path):
    with pytest.raises(MetamonRLError, match="model_name 'a/b' must be one folder name"):
        PretrainedModel("small_agent", "il", "a/b")
    with pytest.raises(MetamonError, match="Unknown battle backend 'showdown'"):
        PretrainedModel("small_agent", "il", "x", battle_backend="showdown")
    missing = PretrainedModel("small_agent", "il", "x", hf_repo_id=str(tmp_path / "missing" / "folder"))
    with pytest.raises(CheckpointNotFoundError, match="neither an existing local folder nor a Hub repository id"):
        missing.checkpoint_path()
    model = PretrainedModel("small_agent", "exp_rl.gin", "x")
    assert model.model_gin_config.parent.name == "models" and model.train_gin_config.name == "exp_rl.gin"


# ---------------------------------------------------------------------------------------------
# building and loading
# ---------------------------------------------------------------------------------------------


def test_gin_bindings_in_metamon_order(tmp_path):
    model = tiny_model(write_tiny_gin(tmp_path), tmp_path, gin_overrides={"FlashAttention.window_size": (4, 0)})
    bindings = model.gin_bindings()
    assert list(bindings) == ["MetamonTstepEncoder.tokenizer", "SigmaReparam.fast_init",
                              "TformerTrajEncoder.attention_type", "FlashAttention.window_size"]
    assert bindings["MetamonTstepEncoder.tokenizer"] == TINY_TOKENIZER and bindings["SigmaReparam.fast_init"] is True
    expected = FlashAttention if pretrained.importlib.util.find_spec("flash_attn") and torch.cuda.is_available() \
        else VanillaAttention
    assert bindings["TformerTrajEncoder.attention_type"] is expected
    overriding = tiny_model(write_tiny_gin(tmp_path), tmp_path,
                            gin_overrides={"TformerTrajEncoder.attention_type": FlashAttention})
    assert overriding.gin_bindings()["TformerTrajEncoder.attention_type"] is FlashAttention
    assert model.gin_bindings(action_temperature=0.5)["MetamonDiscrete.temperature"] == 0.5
    assert model.initialize_agent(checkpoint=0, action_temperature=0.5).actor.policy_dist.temperature == 0.5
    assert model.initialize_agent(checkpoint=0).actor.policy_dist.temperature == 1.0


def test_vanilla_fallback_warns_and_gin_files_override_the_dict(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained.torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="VanillaAttention unless its gin files"):
        assert pretrained.default_attention_type() is VanillaAttention
    repo = tmp_path / "repo"
    repo.mkdir()
    agent, _ = tiny_model(write_tiny_gin(tmp_path / "a"), repo)._build()
    assert {type(m) for m in agent.traj_encoder.modules()} & {FlashAttention, VanillaAttention} == {VanillaAttention}
    # a model gin that chooses the attention wins over the registry's dict (parsed later)
    gin_file = write_tiny_gin(tmp_path / "b")
    gin_file.write_text(gin_file.read_text() + "TformerTrajEncoder.attention_type = @FlashAttention\n"
                        "FlashAttention.window_size = (3, 0)\n")
    agent, _ = tiny_model(gin_file, repo)._build()
    flash = [m for m in agent.traj_encoder.modules() if isinstance(m, FlashAttention)]
    assert flash and all(m.window_size == (3, 0) for m in flash)


def test_initialize_agent_loads_a_metamon_checkpoint_from_a_local_repo(tmp_path):
    model, saved = _saved_tiny(tmp_path)
    info = model.run_info()
    assert (info.observation_space, info.action_space, info.tokenizer, info.max_seq_len) == (
        "DefaultObservationSpace", "MinimalActionSpace", TINY_TOKENIZER, 8)
    batch = observation_sequence(info)
    assert model.available_checkpoints() == [2, 4]
    agent = model.initialize_agent()  # default epoch 4
    assert not agent.training
    own, ref = agent.state_dict(), saved.state_dict()
    assert own.keys() == ref.keys() and all(torch.equal(own[k], ref[k]) for k in own)
    assert torch.equal(policy_logits(agent, *batch), policy_logits(saved, *batch))
    assert model.checkpoint_path(2).name == "policy_epoch_2.pt"
    fresh = model.initialize_agent(checkpoint=0)  # 0: random initialisation, nothing read
    assert not torch.equal(policy_logits(fresh, *batch), policy_logits(saved, *batch))
    with pytest.raises(CheckpointNotFoundError, match=r"no weights for epoch 6 .*available epochs: \[2, 4\]"):
        model.initialize_agent(checkpoint=6)
    with pytest.raises(MetamonRLError, match="checkpoint must be an epoch number >= 0, got -1"):
        model.initialize_agent(checkpoint=-1)


def test_safetensors_of_an_epoch_are_preferred_over_pt(tmp_path):
    model, saved = _saved_tiny(tmp_path, epochs=(4,))
    other, _ = model._build()
    save_weights(other, tmp_path / "repo" / "tiny-rl" / "ckpts" / "policy_weights" / "policy_epoch_4.safetensors")
    assert model.checkpoint_path(4).suffix == ".safetensors"
    loaded = model.initialize_agent(4)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), other.state_dict().values()))


def test_a_mismatching_checkpoint_names_keys_and_the_registry_entry_that_fits(tmp_path, registered):
    small = tiny_model(write_tiny_gin(tmp_path / "small", d_hidden=16), tmp_path / "repo", "tiny-a")
    wide = tiny_model(write_tiny_gin(tmp_path / "wide", d_hidden=24), tmp_path / "repo", "tiny-b")
    registered("TinySmall", lambda: small)
    registered("TinyWide", lambda: wide)
    agent, _ = wide._build()
    path = save_metamon_checkpoint(agent, tmp_path / "repo", "tiny-a", 4)  # wide weights under the small model
    assert matching_pretrained_models(path) == ["TinyWide"]
    with pytest.raises(MetamonRLError) as error:
        small.initialize_agent(4)
    message = str(error.value)
    assert "actor.base.in_layer.weight: file (24, 16) vs model (16, 16)" in message
    assert "The checkpoint has the architecture of the registered model(s) TinyWide." in message
    torch.save({"unrelated.weight": torch.zeros(2)}, path)
    with pytest.raises(MetamonRLError, match=r"missing keys .*No registered pretrained model has this"):
        small.initialize_agent(4)


def test_a_pickled_payload_in_a_checkpoint_is_refused(tmp_path):
    model, _ = _saved_tiny(tmp_path, epochs=())
    marker = tmp_path / "ran"
    path = tmp_path / "repo" / "tiny-rl" / "ckpts" / "policy_weights" / "policy_epoch_4.pt"
    path.parent.mkdir(parents=True)
    torch.save({"x": _Payload(marker)}, path)
    with pytest.raises(MetamonRLError, match="refusing to load"):
        model.initialize_agent()
    assert not marker.exists()


def _touch(path):
    open(path, "w").close()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_touch, (str(self.marker),))


# ---------------------------------------------------------------------------------------------
# the Hub path (huggingface_hub monkeypatched or offline)
# ---------------------------------------------------------------------------------------------


def test_hub_checkpoints_are_downloaded_into_the_cache(tmp_path, monkeypatch):
    model_gin = write_tiny_gin(tmp_path / "gin")
    local = tiny_model(model_gin, tmp_path / "mirror")
    saved, _ = local._build()
    source = save_metamon_checkpoint(saved, tmp_path / "mirror", "tiny-rl", 4)
    calls = []

    def fake_download(repo_id, filename, repo_type, revision, local_dir):
        calls.append(dict(repo_id=repo_id, filename=filename, repo_type=repo_type, revision=revision,
                          local_dir=str(local_dir)))
        target = local_dir / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path / "cache"))
    hub = tiny_model(model_gin, "jakegrigsby/metamon")
    assert hub.available_checkpoints() is None
    agent = hub.initialize_agent()
    cache = tmp_path / "cache" / "pretrained_models"
    assert calls == [dict(repo_id="jakegrigsby/metamon", filename="tiny-rl/ckpts/policy_weights/policy_epoch_4.pt",
                          repo_type="model", revision="main", local_dir=str(cache))]
    assert (cache / "tiny-rl" / "ckpts" / "policy_weights" / "policy_epoch_4.pt").is_file()
    batch = observation_sequence(hub.run_info())
    assert torch.equal(policy_logits(agent, *batch), policy_logits(saved, *batch))
    hub.initialize_agent()  # already in the cache: no second download
    assert len(calls) == 1
    other_cache = tiny_model(model_gin, "jakegrigsby/metamon", hf_cache_dir=tmp_path / "elsewhere")
    assert other_cache._cache_folder() == tmp_path / "elsewhere"


def test_offline_hub_error_names_repo_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path / "cache"))
    model = get_pretrained_model("SmallRL")
    with pytest.raises(MetamonError) as error:
        model.checkpoint_path()
    message = str(error.value)
    assert "'small-rl/ckpts/policy_weights/policy_epoch_40.pt'" in message and "'jakegrigsby/metamon'" in message
    assert str(tmp_path / "cache" / "pretrained_models" / "small-rl") in message


def test_metamon_cache_is_required_for_hub_models(monkeypatch):
    monkeypatch.delenv("METAMON_CACHE_DIR", raising=False)
    with pytest.raises(MetamonError, match="METAMON_CACHE_DIR is not set"):
        get_pretrained_model("SmallRL").checkpoint_path()


# ---------------------------------------------------------------------------------------------
# the user's own models
# ---------------------------------------------------------------------------------------------


def test_local_pretrained_model(tmp_path):
    model_gin = write_tiny_gin(tmp_path / "gin")
    _, saved = _saved_tiny(tmp_path, epochs=(10,), model_name="my_run")
    with pytest.raises(CheckpointNotFoundError) as error:
        LocalPretrainedModel(tmp_path / "repo", model_gin, "il", "other_run")
    assert isinstance(error.value, FileNotFoundError) and "other_run/ckpts does not exist" in str(error.value)
    local = LocalPretrainedModel(tmp_path / "repo", model_gin, "il", "my_run", tokenizer=TINY_TOKENIZER,
                                 action_space="MinimalActionSpace", default_checkpoint=10)
    agent = local.initialize_agent()
    batch = observation_sequence(local.run_info())
    assert torch.equal(policy_logits(agent, *batch), policy_logits(saved, *batch))


def test_local_finetuned_model_of_a_registry_entry_and_of_our_run(tmp_path, registered):
    model_gin = write_tiny_gin(tmp_path / "gin")
    registered("TinyBase", lambda: tiny_model(model_gin, tmp_path, "tiny-base", reward_function="BinaryReward"))
    # metamon layout (.pt) written by metamon's finetune
    base = get_pretrained_model("TinyBase")
    saved, info = base._build()
    save_metamon_checkpoint(saved, tmp_path / "ckpts", "ft", 2)
    finetuned = LocalFinetunedModel(pretrained.PRETRAINED_MODELS["TinyBase"], tmp_path / "ckpts", "ft", 2)
    assert (finetuned.model_gin_config, finetuned.tokenizer, finetuned.reward_function) == (
        model_gin, TINY_TOKENIZER, "BinaryReward")
    batch = observation_sequence(info)
    assert torch.equal(policy_logits(finetuned.initialize_agent(), *batch), policy_logits(saved, *batch))
    other = LocalFinetunedModel("TinyBase", tmp_path / "ckpts", "ft", 2, train_gin_config="exp_rl",
                                reward_function="DefaultShapedReward")
    assert other.train_gin_config.name == "exp_rl.gin" and other.reward_function == "DefaultShapedReward"
    # our trainer's run directory: run.json, config.gin, .safetensors weights
    run_dir = tmp_path / "runs" / "ours"
    write_run_files(run_dir, RunInfo("DefaultObservationSpace", "MinimalActionSpace", "BinaryReward", TINY_TOKENIZER,
                                     ["gen1ou"], max_seq_len=8),
                    tiny_agent_gin("MetamonTstepEncoder") + (TRAINING_CONFIG_DIR / "il.gin").read_text())
    ours = build_agent(RunInfo.load(run_dir), [run_dir / CONFIG_FILE])
    save_weights(ours, policy_weights_path(run_dir, 3))
    from_run = LocalFinetunedModel("TinyBase", tmp_path / "runs", "ours", 3).initialize_agent()
    run_agent, _ = load_agent(run_dir, 3)
    # the same function: the run's config.gin keeps FlashAttention (SDPA), the registry picks VanillaAttention on CPU
    torch.testing.assert_close(policy_logits(from_run, *batch), policy_logits(run_agent, *batch), rtol=1e-5, atol=1e-6)
    data = json.loads((run_dir / "run.json").read_text())
    data["observation_space"] = "TeamPreviewObservationSpace"
    (run_dir / "run.json").write_text(json.dumps(data))
    with pytest.raises(MetamonRLError, match="observation_space: run 'TeamPreviewObservationSpace'"):
        LocalFinetunedModel("TinyBase", tmp_path / "runs", "ours", 3)


# ---------------------------------------------------------------------------------------------
# player kind and command line
# ---------------------------------------------------------------------------------------------


def test_pretrained_player_specs_are_checked(tmp_path, registered):
    model, _ = _saved_tiny(tmp_path)
    registered("TinySpec", lambda: model)
    assert _builder("pretrained") is pretrained.build_pretrained_player
    assert check_spec("pretrained:TinySpec@2") == PlayerSpec("pretrained", "TinySpec", 2)
    assert check_spec("pretrained:TinySpec").epoch is None
    check_spec("pretrained:TinySpec@0")  # random initialisation: always there
    with pytest.raises(CheckpointNotFoundError, match=r"TinySpec@3: .* no epoch 3 \(available epochs: \[2, 4\]"):
        check_spec("pretrained:TinySpec@3")
    with pytest.raises(UnknownNameError, match="Unknown pretrained model 'NoSuchModel'"):
        check_spec("pretrained:NoSuchModel")
    check_spec("pretrained:SyntheticRLV2@40")  # a Hub model: its epochs are not listed offline


def test_list_command(capsys):
    assert pretrained.main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["name", "hub", "dir", "epoch", "model"]
    assert any(line.split()[:5] == ["SyntheticRLV2", "synthetic-rl-v2", "48", "synthetic_multitaskagent", "binary_rl"]
               for line in lines)
    assert pretrained.main(["list", "--markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "| Kadabra | kadabra | 46 | medium_multitaskagent | binary_rl | TeamPreviewObservationSpace |" in markdown


def test_docs_table_is_the_registry():
    docs = Path(__file__).resolve().parents[3] / "docs" / "pretrained.md"
    assert pretrained.registry_table(markdown=True) in docs.read_text(), (
        "docs/pretrained.md is out of date: paste `python -m metamon.rl.pretrained list --markdown` into it")
