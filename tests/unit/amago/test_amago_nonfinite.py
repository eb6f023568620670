"""The optimizer-step guard of `Experiment.train_step` and the non-finite checkpoint refusal.

A non-finite loss or gradient skips the update (no parameter, optimizer, schedule, target or
counter change), is counted, warned about and logged; `max_nonfinite_updates` in a row stop the
run with an AmagoError; weights that are not finite are never saved. Uses the tiny argmax run of
`_amago_tiny_run.py`.
"""

import copy
import csv

import gin
import numpy as np
import pytest
import torch

from metamon.amago import checkpoints
from metamon.amago.loading import RLData_pad_collate
from metamon.amago.utils import AmagoError, AmagoWarning

import _amago_tiny_run as tiny


@pytest.fixture(autouse=True)
def tiny_gin():
    tiny.configure({"TformerTrajEncoder.dropout_ff": 0.0, "TformerTrajEncoder.dropout_emb": 0.0})
    yield
    gin.clear_config()


class NaNDataset(tiny.ArgmaxDataset):
    """Argmax trajectories whose observations hold a NaN (a bad feature that reached training)."""

    def sample_random_trajectory(self):
        traj = super().sample_random_trajectory()
        traj.obs["x"][0, 0] = float("nan")
        return traj


def _batch(dataset, n=4):
    return RLData_pad_collate([dataset.random_slice(dataset.sample_random_trajectory(), 8) for _ in range(n)])


def _snapshot(exp):
    return {
        "params": {k: v.detach().clone() for k, v in exp.policy.state_dict().items()},
        "optimizer": copy.deepcopy(exp.optimizer.state_dict()),
        "schedule": copy.deepcopy(exp.lr_schedule.state_dict()),
        "updates": exp.grad_update_counter,
    }


def _assert_unchanged(before, exp):
    after = _snapshot(exp)
    assert after["updates"] == before["updates"]
    assert after["schedule"] == before["schedule"]
    for k, v in before["params"].items():  # online, target and maximized critics alike
        assert torch.equal(v, after["params"][k]), k
    for key, state in before["optimizer"]["state"].items():
        for name, value in state.items():
            later = after["optimizer"]["state"][key][name]
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(later)), (key, name)


def _started(tmp_path, **overrides):
    overrides.setdefault("lr_warmup_steps", 0)
    exp = tiny.make_experiment(tmp_path, **overrides)
    exp.start()
    exp.policy_aclr.train()
    return exp


def test_non_finite_loss_skips_the_whole_update(tmp_path):
    exp = _started(tmp_path)
    good, bad = _batch(exp.dataset), _batch(NaNDataset())
    exp.train_step(good, log_step=False)  # the optimizer has state now
    assert exp.grad_update_counter == 1
    before = _snapshot(exp)
    with pytest.warns(AmagoWarning, match=r"update 2 .*epoch 0.*non-finite Actor Loss"):
        metrics = exp.train_step(bad, log_step=True)
    assert not torch.isfinite(metrics["Actor Loss"])
    _assert_unchanged(before, exp)
    assert all(p.grad is None or not p.grad.any() for p in exp.policy.parameters())  # dropped
    assert exp.nonfinite_updates == 1 and metrics["Non-finite Updates Skipped"] == 1
    rows = list(csv.DictReader(open(tmp_path / "run" / "logs" / "metrics.csv")))
    assert [r["value"] for r in rows if r["metric"] == "Non-finite Updates Skipped"] == ["1"]

    exp.train_step(good, log_step=False)  # a good batch trains again and resets the streak
    assert exp.grad_update_counter == 2 and exp.nonfinite_updates == 1
    assert any(not torch.equal(v, exp.policy.state_dict()[k]) for k, v in before["params"].items())


def test_non_finite_gradient_with_a_finite_loss_skips_the_update(tmp_path):
    exp = _started(tmp_path)
    good = _batch(exp.dataset)
    exp.train_step(good, log_step=False)
    before = _snapshot(exp)
    weight = next(p for p in exp.policy.actor.parameters() if p.requires_grad)
    hook = weight.register_hook(lambda g: g * float("inf"))
    with pytest.warns(AmagoWarning, match=r"non-finite gradient"):
        metrics = exp.train_step(good, log_step=False)
    hook.remove()
    assert torch.isfinite(metrics["Total Loss"])
    _assert_unchanged(before, exp)
    assert exp.nonfinite_updates == 1


def test_gradient_accumulation_skips_the_update_a_bad_micro_batch_is_part_of(tmp_path):
    exp = _started(tmp_path, batches_per_update=2)
    good, bad = _batch(exp.dataset), _batch(NaNDataset())
    before = _snapshot(exp)
    exp.train_step(bad, log_step=False)  # first micro-batch: nothing is decided yet
    assert exp.nonfinite_updates == 0
    with pytest.warns(AmagoWarning, match="non-finite Actor Loss"):
        exp.train_step(good, log_step=False)  # the update it belongs to is dropped whole
    _assert_unchanged(before, exp)
    assert exp.nonfinite_updates == 1
    exp.train_step(good, log_step=False)
    exp.train_step(good, log_step=False)
    assert exp.grad_update_counter == 1  # the next update is clean


def test_consecutive_non_finite_updates_stop_the_run_and_nothing_is_saved(tmp_path):
    exp = tiny.make_experiment(tmp_path, dataset=NaNDataset(), max_nonfinite_updates=3)
    exp.start()
    with pytest.warns(AmagoWarning), pytest.raises(AmagoError) as err:
        exp.learn()
    message = str(err.value)
    assert "3 updates in a row" in message and "update 1 (epoch 0)" in message
    assert "non-finite Actor Loss" in message and "max_nonfinite_updates" in message
    assert exp.grad_update_counter == 0 and exp.nonfinite_updates == 3
    ckpts = tmp_path / "run" / "ckpts"
    assert not list((ckpts / "policy_weights").iterdir())
    assert not list((ckpts / "training_states").iterdir())
    assert not (ckpts / "latest" / "policy.safetensors").exists()


def test_max_nonfinite_updates_is_a_positive_int_gin_can_bind(tmp_path):
    for bad in (0, -1, 1.5):
        with pytest.raises(AmagoError, match="max_nonfinite_updates"):
            tiny.make_experiment(tmp_path, max_nonfinite_updates=bad)
    assert tiny.make_experiment(tmp_path).max_nonfinite_updates == 10
    tiny.configure({"Experiment.max_nonfinite_updates": 2})
    assert tiny.make_experiment(tmp_path).max_nonfinite_updates == 2


def test_non_finite_weights_are_never_saved(tmp_path):
    exp = _started(tmp_path)
    with torch.no_grad():
        next(exp.policy.critics.parameters())[0].fill_(float("nan"))
    target = tmp_path / "w.safetensors"
    with pytest.raises(AmagoError, match=r"non-finite.*critics\."):
        checkpoints.save_weights(exp.policy, target)
    assert not target.exists()
    with pytest.raises(AmagoError, match="non-finite"):
        exp.save_checkpoint()
    ckpts = tmp_path / "run" / "ckpts"
    assert not list((ckpts / "policy_weights").iterdir())
    assert not [p for p in (ckpts / "training_states").iterdir() if not p.name.startswith(".")]
    state = {"a": torch.ones(2), "mask": torch.tensor([True, False]), "n": torch.tensor([1, 2])}
    checkpoints.save_weights(state, target)  # finite floats, bools and ints save
    state["b"] = torch.tensor([np.inf])
    with pytest.raises(AmagoError, match=r"\bb\b"):
        checkpoints.save_weights(state, tmp_path / "w2.safetensors")
