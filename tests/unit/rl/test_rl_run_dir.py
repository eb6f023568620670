"""Run directories: run.json round trip, epochs, and rebuilding an agent from a run + epoch."""

import json

import accelerate
import pytest
import torch
from _tiny_gin import tiny_agent_gin

from metamon.amago import experiment as amago_experiment
from metamon.amago.checkpoints import save_weights
from metamon.amago.experiment import Experiment
from metamon.rl import MetamonRLError
from metamon.rl.run_dir import (
    CONFIG_FILE,
    RUN_INFO_FILE,
    RunInfo,
    available_epochs,
    build_agent,
    load_agent,
    policy_weights_path,
    write_run_files,
)


def _info(**overrides):
    fields = dict(
        observation_space="DefaultObservationSpace",
        action_space="DefaultActionSpace",
        reward_function="DefaultShapedReward",
        tokenizer="metamon-gemma-v1",
        formats=["gen1ou", "gen9ou"],
        max_seq_len=8,
    )
    fields.update(overrides)
    return RunInfo(**fields)


def _make_run(run_dir, epochs=(3,), d_model=16):
    """A run directory with random weights saved for ``epochs``; returns the saved agent."""
    info = _info()
    write_run_files(run_dir, info, tiny_agent_gin(traj_d_model=d_model))
    agent = build_agent(info, [run_dir / CONFIG_FILE])
    for epoch in epochs:
        save_weights(agent, policy_weights_path(run_dir, epoch))
    return agent


def test_run_info_round_trip(tmp_path):
    info = _info()
    path = info.save(tmp_path / "run")
    assert path == tmp_path / "run" / RUN_INFO_FILE
    assert RunInfo.load(tmp_path / "run") == info
    data = json.loads(path.read_text())
    assert data["formats"] == ["gen1ou", "gen9ou"] and data["max_seq_len"] == 8
    assert data["amago_version"] == "3.1.1" and data["created"].endswith("+00:00")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [RUN_INFO_FILE]  # no temp file left


def test_run_info_errors(tmp_path):
    with pytest.raises(MetamonRLError, match="not a metamon run directory"):
        RunInfo.load(tmp_path)
    (tmp_path / RUN_INFO_FILE).write_text(json.dumps({"observation_space": "DefaultObservationSpace"}))
    with pytest.raises(MetamonRLError, match=r"lacks the key\(s\) \['action_space'"):
        RunInfo.load(tmp_path)
    with pytest.raises(MetamonRLError, match="max_seq_len must be a positive int"):
        _info(max_seq_len=None).save(tmp_path / "other")


def test_available_epochs(tmp_path):
    assert available_epochs(tmp_path) == []
    folder = tmp_path / "ckpts" / "policy_weights"
    folder.mkdir(parents=True)
    for name in ("policy_epoch_10.safetensors", "policy_epoch_2.safetensors", "policy_epoch_x.safetensors",
                 "policy_epoch_3.pt", ".policy_epoch_4.safetensors.tmp"):
        (folder / name).write_bytes(b"")
    assert available_epochs(tmp_path) == [2, 10]


def test_load_agent_restores_weights(tmp_path):
    run_dir = tmp_path / "tiny"
    saved = _make_run(run_dir, epochs=(0, 3))
    agent, info = load_agent(run_dir)  # latest = epoch 3
    assert info == RunInfo.load(run_dir)
    assert not agent.training
    own, ref = agent.state_dict(), saved.state_dict()
    assert own.keys() == ref.keys()
    assert all(torch.equal(own[k], ref[k]) for k in own)
    assert agent.traj_encoder.max_seq_len == 8


def test_load_agent_errors(tmp_path):
    with pytest.raises(MetamonRLError, match="does not exist"):
        load_agent(tmp_path / "nope")
    run_dir = tmp_path / "tiny"
    _make_run(run_dir, epochs=(1, 5))
    with pytest.raises(MetamonRLError, match=r"no weights for epoch 2; available epochs: \[1, 5\]"):
        load_agent(run_dir, epoch=2)
    # The same run with a wider trajectory encoder: the weights no longer fit.
    (run_dir / CONFIG_FILE).write_text(tiny_agent_gin(traj_d_model=32))
    with pytest.raises(MetamonRLError, match="do not fit the agent"):
        load_agent(run_dir, epoch=1)
    (run_dir / CONFIG_FILE).unlink()
    with pytest.raises(MetamonRLError, match="config.gin does not exist"):
        load_agent(run_dir)


def test_max_seq_len_must_agree(tmp_path):
    write_run_files(tmp_path, _info(max_seq_len=16), tiny_agent_gin(traj_d_model=16))
    with pytest.raises(MetamonRLError, match="max_seq_len=8 but the run info says 16"):
        build_agent(RunInfo.load(tmp_path), [tmp_path / CONFIG_FILE])


def test_load_agent_builds_no_trainer(tmp_path, monkeypatch):
    """Inference loading needs neither an Experiment nor an accelerate Accelerator."""
    run_dir = tmp_path / "tiny"
    _make_run(run_dir)

    def forbidden(*args, **kwargs):
        raise AssertionError("load_agent must not construct a trainer")

    monkeypatch.setattr(accelerate, "Accelerator", forbidden)
    monkeypatch.setattr(amago_experiment, "Accelerator", forbidden)
    monkeypatch.setattr(Experiment, "__post_init__", forbidden)
    agent, info = load_agent(run_dir)
    assert type(agent.tstep_encoder).__name__ == "ScratchTstepEncoder"
    assert agent.tstep_encoder.tokenizer_name == info.tokenizer
