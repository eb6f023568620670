"""``python -m metamon.rl.train`` end to end on generated battles: validation battles between
epochs, the run directory's files, resume rules, and errors raised before training starts."""

import csv

import pytest
import torch
from safetensors.torch import load_file

from metamon.data.generate import generate
from metamon.rl import train
from metamon.rl.run_dir import RunInfo, available_epochs, policy_weights_path

FMT = "gen1ou"



@pytest.fixture(scope="module")
def battles(showdown_server, tmp_path_factory):
    data = tmp_path_factory.mktemp("train_cli_data")
    url = f"{showdown_server.host}:{showdown_server.port}"
    assert generate("GymLeader", "Grunt", FMT, 3, data, server_url=url, seed=1, show_progress=False).files_written == 6
    return data, url


def _flags(data, save_dir, *extra):
    return [
        "--run_name", "cli", "--save_dir", str(save_dir), "--model_gin_config", "tiny_agent",
        "--train_gin_config", "il.gin", "--parsed_replay_dir", str(data), "--formats", FMT,
        "--epochs", "2", "--steps_per_epoch", "2", "--batch_size_per_gpu", "2", "--dloader_workers", "0",
        "--ckpt_interval", "1", "--log_interval", "1", "--seed", "0", *extra,
    ]


def test_train_validates_between_epochs_and_writes_a_self_describing_run(battles, tmp_path):
    data, url = battles
    flags = _flags(data, tmp_path, "--eval_gens", "1", "--eval_opponents", "RandomBaseline",
                   "--eval_battles", "2", "--eval_server_url", url)
    assert train.main(flags) == 0

    run = tmp_path / "cli"
    assert available_epochs(run) == [0, 1]
    info = RunInfo.load(run)
    assert (info.observation_space, info.action_space, info.tokenizer) == (
        "TeamPreviewObservationSpace", "DefaultActionSpace", "metamon-gemma-v1")
    assert info.formats == [FMT] and info.max_seq_len == 64
    assert info.command.startswith("python -m metamon.rl.train --run_name cli --save_dir ")
    assert "--eval_battles 2" in info.command  # the model card of a pushed run shows it
    assert "tiny_agent.gin" in (run / "config.gin").read_text()
    with open(run / "logs" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    val = [r for r in rows if r["key"] == "val"]
    # validation runs at the start of each of the 2 epochs: win rate + valid actions each time
    assert {r["epoch"] for r in val} == {"0", "1"}
    win = [float(r["value"]) for r in val if r["metric"] == f"Average Win Rate in {FMT}_vs_RandomBaseline"]
    assert len(win) == 2 and all(0.0 <= w <= 1.0 for w in win)
    assert all(float(r["value"]) == 1.0 for r in val if r["metric"].startswith("Average Valid Actions"))
    assert any(r["key"] == "train-update" and r["metric"] == "Actor Loss" for r in rows)

    # a new run never reuses a folder with checkpoints; --ckpt resumes it (nothing left to do here)
    with pytest.raises(SystemExit, match="already holds checkpoints"):
        train.main(_flags(data, tmp_path, "--eval_gens"))
    assert train.main(_flags(data, tmp_path, "--eval_gens", "--ckpt", "1")) == 0
    assert available_epochs(run) == [0, 1]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--ckpt", "3"], "cannot resume: run directory .* does not exist"),
        (["--gin_bindings", "MetamonAMAGOExperiment.learning_rat = 1e-3"], "learning_rat"),
        (["--gin_bindings", "NoSuchEncoder.d_model = 3"], "NoSuchEncoder"),
        (["--model_gin_config", "no_such_model"], "no_such_model"),
        (["--formats", "gen2ou"], "gen2ou"),
        (["--eval_gens", "1", "--eval_server_url", "127.0.0.1:1"], "--eval_server_url 127.0.0.1:1"),
    ],
)
def test_bad_input_fails_before_training_naming_it(battles, tmp_path, extra, message):
    data, _ = battles
    with pytest.raises(SystemExit, match=message):
        train.main(_flags(data, tmp_path, "--eval_gens", *extra))
    assert not (tmp_path / "cli").exists()


def test_init_from_checkpoint_starts_a_new_run_from_another_runs_weights(battles, tmp_path):
    data, _ = battles
    assert train.main(_flags(data, tmp_path, "--eval_gens", "--epochs", "1")) == 0
    source = tmp_path / "cli"
    # one update: the warm-up makes the first update's learning rate 0, so the finetuned run's
    # epoch-0 weights and biases are the source's (online networks; targets move by tau, and
    # spectral-norm power-iteration buffers by a forward pass)
    flags = _flags(data, tmp_path, "--eval_gens", "--epochs", "1", "--steps_per_epoch", "1",
                   "--init_from_checkpoint", f"run:{source}@0")
    flags[flags.index("cli")] = "finetuned"
    assert train.main(flags) == 0
    finetuned = tmp_path / "finetuned"
    assert RunInfo.load(finetuned).init_from == str(policy_weights_path(source, 0).resolve())
    before = load_file(policy_weights_path(source, 0))
    after = load_file(policy_weights_path(finetuned, 0))
    online = [k for k in before if k.startswith(("actor.", "tstep_encoder.", "traj_encoder.", "critics."))
              and k.endswith((".weight", ".bias"))]
    assert online and all(torch.equal(before[k], after[k]) for k in online)

    wrong = _flags(data, tmp_path, "--eval_gens", "--model_gin_config", "small_agent",
                   "--init_from_checkpoint", f"run:{source}@0")
    wrong[wrong.index("cli")] = "mismatch"
    with pytest.raises(SystemExit, match="architecture differs"):
        train.main(wrong)
    missing = _flags(data, tmp_path, "--eval_gens", "--init_from_checkpoint", f"run:{source}@7")
    missing[missing.index("cli")] = "missing"
    with pytest.raises(SystemExit, match=r"no epoch 7 \(available epochs: \[0\]\)"):
        train.main(missing)
    assert not (tmp_path / "mismatch").exists() and not (tmp_path / "missing").exists()


def test_critic_first_recipe_runs_its_two_stages(battles, tmp_path):
    """critic_first.gin, then critic_first_binary.gin from its checkpoint: stage 2 starts from
    stage 1's critic and its own critic encoders; from a run without them it is refused.
    critic_first_onestep.gin keeps stage 1's policy as its advantage reference, also on a resume."""
    data, _ = battles

    def flags(name, train_gin, *extra):
        out = _flags(data, tmp_path, "--eval_gens", "--epochs", "1", *extra)
        out[out.index("cli")] = name
        out[out.index("il.gin")] = train_gin
        return out

    assert train.main(flags("stage1", "critic_first.gin")) == 0
    assert train.main(flags("stage2", "critic_first_binary.gin", "--steps_per_epoch", "1",
                            "--init_from_checkpoint", f"run:{tmp_path / 'stage1'}@0")) == 0
    before = load_file(policy_weights_path(tmp_path / "stage1", 0))
    after = load_file(policy_weights_path(tmp_path / "stage2", 0))
    critic = [k for k in before if k.startswith(("critic_tstep_encoder.", "critic_traj_encoder.", "critics."))
              and k.endswith((".weight", ".bias"))]
    assert any(k.startswith("critic_tstep_encoder.") for k in critic)
    assert all(torch.equal(before[k], after[k]) for k in critic)  # the first update's lr is 0 (warm-up)

    # the filter's V under the policy stage 2 started from: the reference is stage 1's policy, kept on a resume
    onestep = flags("onestep", "critic_first_onestep.gin", "--epochs", "2", "--steps_per_epoch", "3")  # the last wins
    assert train.main([*onestep, "--init_from_checkpoint", f"run:{tmp_path / 'stage1'}@0"]) == 0
    assert train.main([*onestep, "--ckpt", "0"]) == 0  # redo epoch 1 from epoch 0's training state
    for epoch in (0, 1):
        weights = load_file(policy_weights_path(tmp_path / "onestep", epoch))
        policy = [k for k in before if k.startswith(("tstep_encoder.", "traj_encoder.", "actor."))]
        assert all(torch.equal(weights[f"advantage_reference.{k}"], before[k]) for k in policy)
        assert not all(torch.equal(weights[k], before[k]) for k in policy)  # the policy itself has moved

    assert train.main(_flags(data, tmp_path, "--eval_gens", "--epochs", "1")) == 0  # an IL run: no critic encoders
    with pytest.raises(SystemExit, match="architecture differs"):
        train.main(flags("from_il", "critic_first_binary.gin", "--init_from_checkpoint", f"run:{tmp_path / 'cli'}@0"))
    assert not (tmp_path / "from_il").exists()
