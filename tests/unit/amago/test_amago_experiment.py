"""Experiment (accelerate loop, losses, checkpoints, resume) and the gin helpers in cli_utils.

The runs use `_amago_tiny_run.py` next to this file: a synthetic argmax imitation task with the
real Agent, FFTstepEncoder and a 1-layer d_model 16 TformerTrajEncoder.
"""

import copy
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import gin
import pytest
import torch
from safetensors.torch import load_file

from metamon.amago.cli_utils import alias_amago_modules, resolve_gin_file, use_config
from metamon.amago.loading import MISSING_ACTION_KEY, RLData_pad_collate, valid_step_mask
from metamon.amago.utils import AmagoError, masked_avg

import _amago_tiny_run as tiny

SCRIPT = Path(__file__).with_name("_amago_tiny_run.py")


@pytest.fixture(autouse=True)
def tiny_gin():
    tiny.configure()
    yield
    gin.clear_config()


def _params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_same_params(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ------------------------------------------------------------------------------------- set-up


def test_build_agent_needs_no_start(tmp_path):
    exp = tiny.make_experiment(tmp_path, dataset=None)
    agent = exp.build_agent()
    assert exp.rl2_space.shape == (5,)
    assert [n for n, _ in agent.named_children()][:3] == ["tstep_encoder", "traj_encoder", "critics"]
    assert not (tmp_path / "run").exists()
    with pytest.raises(AmagoError, match="dataset is None"):
        exp.start()
    with pytest.raises(AmagoError, match="action_space must be a gymnasium spaces.Discrete"):
        tiny.make_experiment(tmp_path, action_space=tiny.gym.spaces.Box(0, 1, (2,)))
    with pytest.raises(AmagoError, match="mixed_precision must be one of"):
        tiny.make_experiment(tmp_path, mixed_precision="fp8")


def test_start_writes_layout_and_first_update_runs_at_lr_zero(tmp_path):
    exp = tiny.make_experiment(tmp_path, epochs=1, train_batches_per_epoch=2)
    exp.start()
    ckpts = tmp_path / "run" / "ckpts"
    assert sorted(p.name for p in ckpts.iterdir()) == ["config.txt", "latest", "policy_weights", "training_states"]
    assert "TformerTrajEncoder.d_model = 16" in (ckpts / "config.txt").read_text()
    before = _params(exp.policy.actor)
    exp.learn()
    rows = list(csv.DictReader(open(tmp_path / "run" / "logs" / "metrics.csv")))
    lrs = [float(r["value"]) for r in rows if r["metric"] == "Learning Rate"]
    assert lrs == [0.0, 1.5e-3]  # warm-up 2: factor 0 (the first update runs at lr 0, as AMAGO), then 1/2
    assert {"Actor Grad Norm", "Critic Grad Norm", "TrajEncoder Grad Norm", "TstepEncoder Grad Norm"} <= {
        r["metric"] for r in rows}
    assert rows[0]["key"] == "train-update" and rows[0]["epoch"] == "0"
    assert not all(torch.equal(before[k], v) for k, v in _params(exp.policy.actor).items())
    assert sorted(p.name for p in (ckpts / "policy_weights").iterdir()) == ["policy_epoch_0.safetensors"]
    assert (ckpts / "latest" / "policy.safetensors").is_file()


# ------------------------------------------------------------------------------------- losses


def test_compute_loss_masks_padding_and_unknown_actions(tmp_path):
    exp = tiny.make_experiment(tmp_path)
    exp.start()
    torch.manual_seed(0)
    batch = RLData_pad_collate([exp.dataset.random_slice(exp.dataset.sample_random_trajectory(), 8)
                                for _ in range(5)])
    B, L = batch.rl2s.shape[:2]
    valid = valid_step_mask(batch.rl2s)[:, 1:]
    exp.policy.eval()  # no dropout: the two forwards below agree
    with torch.no_grad():
        out = exp.compute_loss(batch, log_step=True)
        actor_loss = exp.policy(batch, log_step=False).actor
    assert out["Critic Loss"] == 0.0  # IL: the agent returns no critic loss
    assert out["Sequence Length"] == L and out["Batch Size (in Timesteps)"] == B * (L - 1)
    assert out["Unmasked Batch Size (in Timesteps)"] == int(valid.sum()) < B * (L - 1)
    expected = actor_loss[valid].mean()
    assert torch.allclose(out["Actor Loss"], expected, atol=1e-4)
    assert "Policy Per-timestep Entropy (test-time gamma)" in out  # update_info merged

    missing = torch.ones(B, L, 1, dtype=torch.bool)  # every action unknown but the first one
    missing[:, 0] = False
    batch.obs[MISSING_ACTION_KEY] = missing
    with torch.no_grad():
        out = exp.compute_loss(batch, log_step=False)
    assert out["Unmasked Batch Size (in Timesteps)"] == B
    assert torch.allclose(out["Actor Loss"], actor_loss[:, 0].mean(), atol=1e-4)


def test_gradient_accumulation_averages_micro_batches(tmp_path):
    tiny.configure({"TformerTrajEncoder.dropout_ff": 0.0, "TformerTrajEncoder.dropout_emb": 0.0})
    exp = tiny.make_experiment(tmp_path, batches_per_update=2, grad_clip=1e9, epochs=2)
    exp.start()
    reference = copy.deepcopy(exp.policy)
    batches = [RLData_pad_collate([exp.dataset[0] for _ in range(4)]) for _ in range(2)]
    seen = {}
    sync = exp.policy.soft_sync_targets

    def capture_then_sync():  # runs right before optimizer.step on the update's last micro-batch
        seen.update({n: p.grad.clone() for n, p in exp.policy.named_parameters() if p.grad is not None})
        sync()

    exp.policy.soft_sync_targets = capture_then_sync
    exp.policy_aclr.train()
    exp.train_step(batches[0], log_step=False)
    assert exp.grad_update_counter == 0 and not seen
    exp.train_step(batches[1], log_step=False)
    assert exp.grad_update_counter == 1
    reference.train()
    for b in batches:  # (∇ℓ(b1) + ∇ℓ(b2)) / 2, computed by hand
        actor_loss = reference(b, log_step=False).actor
        (masked_avg(actor_loss, valid_step_mask(b.rl2s)[:, 1:, None, None]) / 2).backward()
    ref = {n: p.grad for n, p in reference.named_parameters() if p.grad is not None}
    assert seen.keys() == ref.keys() and len(ref) > 10
    for n in ref:
        assert torch.allclose(seen[n], ref[n], atol=1e-6), n
    assert all(p.grad is None for p in exp.policy.parameters())  # zeroed after the step

    exp.policy.soft_sync_targets = sync
    exp.learn()  # 2 epochs x 4 micro-batches, 2 per update
    assert exp.grad_update_counter == 1 + 4


def test_il_loss_decreases(tmp_path):
    exp = tiny.make_experiment(tmp_path, epochs=1, train_batches_per_epoch=50, batch_size=8, ckpt_interval=None)
    exp.start()
    exp.learn()
    assert exp.grad_update_counter == 50
    rows = list(csv.DictReader(open(tmp_path / "run" / "logs" / "metrics.csv")))
    losses = [float(r["value"]) for r in rows if r["metric"] == "Actor Loss"]
    assert len(losses) == 50
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert first > 1.2 and last < 0.8 * first, (first, last)


# ---------------------------------------------------------------------------------- checkpoints


def test_resume_in_process_is_exact(tmp_path, monkeypatch):
    full = tiny.make_experiment(tmp_path, epochs=3)
    full.start()
    full.learn()
    assert full.available_epochs() == [0, 1, 2] and full.grad_update_counter == 12
    final = _params(full.policy)

    def forbidden(*a, **k):
        raise AssertionError("torch.load must never be called")

    monkeypatch.setattr(torch, "load", forbidden)
    resumed = tiny.make_experiment(tmp_path, epochs=3, seed=123)  # seed is irrelevant after loading
    resumed.start()
    resumed.load_checkpoint(1)
    assert (resumed.epoch, resumed.next_epoch, resumed.grad_update_counter) == (1, 2, 8)
    resumed.learn()
    assert resumed.grad_update_counter == 12
    _assert_same_params(final, _params(resumed.policy))
    suffixes = {p.suffix for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert suffixes == {".json", ".safetensors", ".txt", ".csv"}

    weights_only = tiny.make_experiment(tmp_path, epochs=3)
    weights_only.start()
    weights_only.load_checkpoint(2, resume_training_state=False)
    _assert_same_params(final, _params(weights_only.policy))
    assert weights_only.next_epoch == 0 and weights_only.grad_update_counter == 0


def test_missing_run_epoch_and_other_architecture_errors(tmp_path):
    exp = tiny.make_experiment(tmp_path, run_name="nope")
    with pytest.raises(AmagoError, match=r"run directory .*nope does not exist"):
        exp.load_checkpoint(0)
    exp = tiny.make_experiment(tmp_path, epochs=1, train_batches_per_epoch=1)
    exp.start()
    exp.learn()
    with pytest.raises(AmagoError, match=r"no complete training state for epoch 7 .*available epochs: \[0\]"):
        exp.load_checkpoint(7)
    with pytest.raises(AmagoError, match=r"no policy weights for epoch 3 .*available epochs: \[0\]"):
        exp.load_checkpoint(3, resume_training_state=False)

    tiny.configure({"TformerTrajEncoder.d_model": 32})
    bigger = tiny.make_experiment(tmp_path, epochs=1)
    bigger.start()
    with pytest.raises(AmagoError, match=r"policy_epoch_0\.safetensors.*traj_encoder\.tformer\.inp\.weight"):
        bigger.load_checkpoint(0, resume_training_state=False)
    with pytest.raises(AmagoError, match=r"run_epoch_0/model\.safetensors.*shape mismatch"):
        bigger.load_checkpoint(0)


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

    def run(*args):
        return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, cwd=SCRIPT.parent,
                              capture_output=True, text=True, timeout=120)

    killed = run("--base_dir", str(tmp_path / "a"), "--kill_at_update", "10", "--out", str(tmp_path / "k"))
    assert killed.returncode == -9, killed.stderr[-2000:]
    states = tmp_path / "a" / "run" / "ckpts" / "training_states"
    assert sorted(p.name for p in states.iterdir() if not p.name.startswith(".")) == ["run_epoch_0", "run_epoch_1"]
    resumed = run("--base_dir", str(tmp_path / "a"), "--resume", "--out", str(tmp_path / "resumed"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # the uninterrupted run in this process (same seed, same code path)
    exp = tiny.make_experiment(tmp_path / "b")
    exp.start()
    exp.learn()
    info = json.loads((tmp_path / "resumed.rank0.json").read_text())
    assert info["grad_update_counter"] == exp.grad_update_counter == 16
    _assert_same_params(_params(exp.policy), load_file(str(tmp_path / "resumed.rank0.safetensors")))


# ------------------------------------------------------------------------------------ gin utils


def test_use_config_errors_name_the_binding_or_file(tmp_path):
    gin.clear_config()
    with pytest.raises(AmagoError, match=r"binding Agent\.tauu = 0\.1.*tauu"):
        use_config({"Agent.tauu": 0.1}, None, finalize=False)
    with pytest.raises(AmagoError, match=r"binding NoSuchThing\.x = 1: .*No configurable matching"):
        use_config({"NoSuchThing.x": 1}, None, finalize=False)
    bad = tmp_path / "bad.gin"
    bad.write_text("Agent.tau = = 3\n")
    with pytest.raises(AmagoError, match=r"file .*bad\.gin"):
        use_config({}, [str(bad)], finalize=False)
    with pytest.raises(AmagoError, match=r"binding 'Agent\.num_critic = 3'"):
        use_config({}, None, finalize=False, bindings=["Agent.num_critic = 3"])


def test_gin_file_with_amago_imports_parses_and_later_files_win(tmp_path):
    gin.clear_config()
    assert alias_amago_modules() is True
    import amago.agent  # only importable once alias_amago_modules() has run (what this test checks)

    assert amago.agent.Agent is tiny.Agent
    model = tmp_path / "model.gin"
    model.write_text("import amago.agent\nimport amago.nets.traj_encoders\n"
                     "amago.agent.Agent.tau = 0.01\ntraj_encoders.TformerTrajEncoder.d_model = 24\n")
    train = tmp_path / "train.gin"
    train.write_text("agent.Agent.tau = 0.02\n")
    use_config({"Agent.tau": 0.5, "Agent.num_critics": 3}, [str(model), str(train)], finalize=True)
    assert gin.query_parameter("Agent.tau") == 0.02
    assert gin.query_parameter("Agent.num_critics") == 3
    assert gin.query_parameter("TformerTrajEncoder.d_model") == 24
    with pytest.raises(RuntimeError, match="locked"):
        gin.bind_parameter("Agent.tau", 0.3)


def test_resolve_gin_file(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "small.gin").write_text("")
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "il.gin").write_text("")
    dirs = [tmp_path / "models", tmp_path / "training"]
    assert resolve_gin_file("small", dirs) == tmp_path / "models" / "small.gin"
    assert resolve_gin_file("il.gin", dirs) == tmp_path / "training" / "il.gin"
    assert resolve_gin_file(str(tmp_path / "models" / "small.gin"), []) == tmp_path / "models" / "small.gin"
    not_found = r"'smal' not found; searched .*models.*training.*available: \['il.gin', 'small.gin'\]"
    with pytest.raises(AmagoError, match=not_found):
        resolve_gin_file("smal", dirs)
