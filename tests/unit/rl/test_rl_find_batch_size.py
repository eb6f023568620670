"""find_batch_size: the doubling + bisection search (exact on fake predicates), the OOM recovery
of a CUDA trial, and the CPU memory estimate on tiny_agent."""

import json
import math

import pytest
import torch
from _tiny_replays import FMT, write_replays

from metamon.rl import MetamonRLError
from metamon.rl import find_batch_size as fbs
from metamon.rl.train import TrainConfig


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_replays(tmp_path_factory.mktemp("replays"))


def tiny_config(data, tmp_path, **kwargs):
    return TrainConfig(run_name="r", save_dir=str(tmp_path / "runs"), model_gin_config="tiny_agent.gin",
                       train_gin_config="il.gin", parsed_replay_dir=str(data), formats=[FMT], eval_gens=(),
                       dloader_workers=0, **kwargs)


# ------------------------------------------------------------------------------ the search
@pytest.mark.parametrize("answer", [0, 1, 2, 3, 5, 7, 8, 64, 100, 511, 1000, 1023, 1024, 5000])
@pytest.mark.parametrize("start", [1, 3])
def test_largest_fitting_is_exact_and_tries_each_size_once(answer, start):
    tried = []

    def fits(b):
        tried.append(b)
        return b <= answer

    found = fbs.largest_fitting(fits, start=start, limit=1024)
    assert found == (0 if answer < start else min(answer, 1024))
    assert len(tried) == len(set(tried)) and all(start <= b <= 1024 for b in tried)
    assert len(tried) <= 2 * math.ceil(math.log2(1024 / start)) + 1
    # doubling first: start, 2 start, 4 start, ... up to the first failure
    doubling = [min(start * 2**i, 1024) for i in range(len(tried))]
    first_fail = next((i for i, b in enumerate(tried) if b > answer), len(tried))
    assert tried[: first_fail + 1] == doubling[: first_fail + 1]


def test_largest_fitting_rejects_bad_bounds():
    with pytest.raises(MetamonRLError, match="1 <= start <= limit"):
        fbs.largest_fitting(lambda b: True, start=8, limit=4)
    assert fbs.largest_fitting(lambda b: True, start=4, limit=4) == 4


def test_memory_model_arithmetic():
    model = fbs.MemoryModel(weights=1000, training_state=300, intercept=100.0, per_sample=50.0,
                            measured={1: 150, 2: 200})
    assert model.activations(4) == 300 and model.total(4) == 1600
    assert model.largest_within(300 + 100 + 50 * 7 + 49) == 7
    assert model.largest_within(399) == 0


# ------------------------------------------------------------------------------ CUDA trial logic (simulated OOM)
def test_cuda_trial_recovers_from_out_of_memory(data, tmp_path, monkeypatch):
    experiment = fbs.scratch_experiment(tiny_config(data, tmp_path, batch_size_per_gpu=2), tmp_path / "scratch")
    real = fbs.forward_backward

    def limited(exp, batch):
        loss = real(exp, batch)  # gradients exist when the "allocation" fails
        if batch.batch_size > 5:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return loss

    monkeypatch.setattr(fbs, "forward_backward", limited)
    assert fbs.largest_fitting(lambda b: fbs.cuda_fits(experiment, b), 1, 64) == 5
    assert all(p.grad is None for p in experiment.policy.parameters())  # dropped after every trial
    experiment.close()


# ------------------------------------------------------------------------------ CPU estimate
def test_saved_activations_grow_with_the_batch(data, tmp_path):
    experiment = fbs.scratch_experiment(tiny_config(data, tmp_path), tmp_path / "scratch")
    torch.manual_seed(0)
    one = fbs.saved_activation_bytes(experiment, fbs.draw_batch(experiment, 1))
    four = fbs.saved_activation_bytes(experiment, fbs.draw_batch(experiment, 4))
    assert 0 < one and 3 * one < four < 5 * one  # all battles have the same length here
    assert all(p.grad is None for p in experiment.policy.parameters())
    experiment.close()


def test_cpu_estimate_on_tiny_agent(data, tmp_path, capsys):
    out = tmp_path / "result.json"
    code = fbs.main(["--model_gin_config", "tiny_agent.gin", "--train_gin_config", "il.gin",
                     "--parsed_replay_dir", str(data), "--formats", FMT, "--eval_gens", "--dloader_workers", "0",
                     "--max_batch", "64", "--json_out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["method"] == "estimate" and result["device"] == "cpu"
    assert result["per_sample_bytes"] > 0 and set(result["measured"]) == {"1", "2"}
    assert 1 <= result["batch_size"] <= 64  # tiny_agent: the cap, unless the machine is nearly full
    assert "use --batch_size_per_gpu" in capsys.readouterr().out
    assert not (tmp_path / "find_batch_size").exists()  # the placeholder run name wrote nothing


def test_available_memory_without_psutil(monkeypatch):
    with_psutil = fbs.available_memory_bytes()
    monkeypatch.setattr(fbs, "psutil", None)
    from_proc = fbs.available_memory_bytes()
    assert from_proc > 0 and abs(from_proc - with_psutil) < 0.25 * with_psutil  # two reads of a moving number


def test_bad_input_exits_2(tmp_path, capsys):
    code = fbs.main(["--model_gin_config", "tiny_agent.gin", "--train_gin_config", "il.gin",
                     "--parsed_replay_dir", str(tmp_path / "missing"), "--formats", FMT, "--eval_gens"])
    assert code == 2 and "missing" in capsys.readouterr().err
