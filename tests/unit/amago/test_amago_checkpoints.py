"""Pickle-free, atomic checkpoints (metamon.amago.checkpoints) on a plain module + AdamW."""

import json
import random

import numpy as np
import pytest
import torch
from safetensors import safe_open

from metamon.amago import checkpoints
from metamon.amago.checkpoints import load_training_state, load_weights, save_training_state, save_weights
from metamon.amago.run_layout import RunLayout
from metamon.amago.utils import AmagoError


class Tied(torch.nn.Module):
    """A small net whose output layer shares its weight with the input layer (tied tensors)."""

    def __init__(self, d=4):
        super().__init__()
        self.inp = torch.nn.Linear(d, d)
        self.out = torch.nn.Linear(d, d)
        self.out.weight = self.inp.weight
        self.register_buffer("count", torch.tensor([3], dtype=torch.int64))

    def forward(self, x):
        return self.out(torch.relu(self.inp(x)))


def _trained(seed=0, steps=3):
    torch.manual_seed(seed)
    model = Tied()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / 2))
    for _ in range(steps):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
        sched.step()
    return model, opt, sched


@pytest.fixture
def no_torch_load(monkeypatch):
    def forbidden(*a, **k):
        raise AssertionError("torch.load must never be called")

    monkeypatch.setattr(torch, "load", forbidden)


def test_weights_round_trip_with_tied_tensors(tmp_path, no_torch_load):
    model, _, _ = _trained()
    path = save_weights(model, tmp_path / "w.safetensors")
    with safe_open(str(path), framework="pt") as f:
        assert sorted(f.keys()) == ["count", "inp.bias", "inp.weight", "out.bias", "out.weight"]
    fresh = Tied()
    load_weights(fresh, path)
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    assert fresh.out.weight is fresh.inp.weight  # loading keeps the tie of the target module
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temp file left


def test_load_weights_other_architecture_names_file_and_keys(tmp_path):
    path = save_weights(torch.nn.Sequential(torch.nn.Linear(4, 3)), tmp_path / "other.safetensors")
    with pytest.raises(AmagoError, match=r"other\.safetensors.*missing keys \(5\): count, inp\.bias"):
        load_weights(Tied(), path)
    save_weights({"inp.weight": torch.zeros(2, 2)}, tmp_path / "shape.safetensors")
    with pytest.raises(AmagoError, match=r"shape\.safetensors.*inp\.weight: file \(2, 2\) vs model \(4, 4\)"):
        load_weights(Tied(), tmp_path / "shape.safetensors", strict=False)
    with pytest.raises(AmagoError, match=r"nope\.safetensors does not exist"):
        load_weights(Tied(), tmp_path / "nope.safetensors")


def test_codec_keeps_types_exactly(tmp_path):
    value = {
        "t": torch.arange(3),
        "tuple": (1, 2.5, None, "s"),
        3: {"nested": [torch.ones(2), (True,)]},
        "arr": np.arange(4, dtype=np.uint32),
        "__odd": 1,
    }
    checkpoints._save_value(value, tmp_path, "v")
    back = checkpoints._load_value(tmp_path, "v")
    assert set(back) == {"t", "tuple", 3, "arr", "__odd"}
    assert torch.equal(back["t"], torch.arange(3)) and back["tuple"] == (1, 2.5, None, "s")
    assert torch.equal(back[3]["nested"][0], torch.ones(2)) and back[3]["nested"][1] == (True,)
    assert back["arr"].dtype == np.uint32 and back["arr"].tolist() == [0, 1, 2, 3]
    with pytest.raises(AmagoError, match="cannot store object at 'x.o' without pickle"):
        checkpoints._save_value({"o": object()}, tmp_path, "x")


def test_training_state_round_trip_is_exact(tmp_path, no_torch_load):
    model, opt, sched = _trained(seed=1)
    random.seed(5), np.random.seed(6), torch.manual_seed(7)
    d = save_training_state(tmp_path / "run_epoch_3", model=model, optimizer=opt, scheduler=sched,
                            extra={"epoch": 3, "grad_update_counter": 12})
    names = sorted(p.name for p in d.iterdir())
    assert names == ["complete.json", "model.safetensors", "optimizer.json", "optimizer.safetensors",
                     "progress.json", "rng.json", "rng.safetensors", "scheduler.json"]
    assert not any(p.suffix in (".bin", ".pkl", ".pt") for p in tmp_path.rglob("*"))
    assert json.loads((d / "progress.json").read_text()) == {"epoch": 3, "grad_update_counter": 12}
    expected_draws = (random.random(), float(np.random.rand()), float(torch.rand(())))
    # continue the original for one more step -> reference trajectory
    x = torch.randn(5, 4)

    def step(m, o, s):
        o.zero_grad()
        m(x).pow(2).sum().backward()
        o.step()
        s.step()

    step(model, opt, sched)

    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    model2, opt2, sched2 = _trained(seed=99, steps=1)
    extra = load_training_state(d, model=model2, optimizer=opt2, scheduler=sched2)
    assert extra == {"epoch": 3, "grad_update_counter": 12}
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expected_draws
    assert opt2.state_dict()["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sched2.last_epoch == 3
    step(model2, opt2, sched2)
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        assert torch.equal(a, b), k
    assert sched.get_last_lr() == sched2.get_last_lr()


def test_interrupted_save_leaves_nothing_loadable(tmp_path, monkeypatch):
    model, opt, sched = _trained()
    target = tmp_path / "run_epoch_0"

    def killed(*a, **k):  # the process "dies" while writing the optimizer state
        raise KeyboardInterrupt

    original = checkpoints._save_value

    def save_value(obj, directory, stem):
        if stem == "optimizer":
            killed()
        return original(obj, directory, stem)

    monkeypatch.setattr(checkpoints, "_save_value", save_value)
    with pytest.raises(KeyboardInterrupt):
        save_training_state(target, model=model, optimizer=opt, scheduler=sched, extra={"epoch": 0})
    assert not target.exists()
    staging = tmp_path / ".run_epoch_0.partial"
    assert (staging / "model.safetensors").is_file() and not checkpoints.is_complete(staging)
    with pytest.raises(AmagoError, match="run_epoch_0 does not exist"):
        load_training_state(target, model=model, optimizer=opt, scheduler=sched)
    with pytest.raises(AmagoError, match="incomplete"):
        load_training_state(staging, model=model, optimizer=opt, scheduler=sched)
    # the next save cleans the stale staging dir up and publishes a complete directory
    monkeypatch.setattr(checkpoints, "_save_value", original)
    save_training_state(target, model=model, optimizer=opt, scheduler=sched, extra={"epoch": 0})
    assert checkpoints.is_complete(target) and not staging.exists()
    # saving the same epoch again replaces it atomically
    save_training_state(target, model=model, optimizer=opt, scheduler=sched, extra={"epoch": 1})
    assert json.loads((target / "progress.json").read_text()) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_epoch_0"]


def test_training_state_rejects_other_architecture(tmp_path):
    model, opt, sched = _trained()
    d = save_training_state(tmp_path / "s", model=model, optimizer=opt, scheduler=sched, extra={})
    other = torch.nn.Linear(4, 4)
    other_opt = torch.optim.AdamW(other.parameters())
    with pytest.raises(AmagoError, match=r"model\.safetensors"):
        load_training_state(d, model=other, optimizer=other_opt,
                            scheduler=torch.optim.lr_scheduler.LambdaLR(other_opt, lambda s: 1.0))


def test_run_layout_paths_and_epochs(tmp_path):
    layout = RunLayout.of(tmp_path, "myrun")
    assert layout == RunLayout(str(tmp_path / "myrun")) and layout.run_name == "myrun"
    assert layout.policy_weights(3) == tmp_path / "myrun/ckpts/policy_weights/policy_epoch_3.safetensors"
    assert layout.training_state(3) == tmp_path / "myrun/ckpts/training_states/myrun_epoch_3"
    assert layout.latest_weights == tmp_path / "myrun/ckpts/latest/policy.safetensors"
    assert layout.config_txt == tmp_path / "myrun/ckpts/config.txt"
    assert layout.metrics_csv == tmp_path / "myrun/logs/metrics.csv"
    assert layout.weight_epochs() == layout.training_state_epochs() == []
    model, opt, sched = _trained()
    for epoch in (2, 10):
        save_weights(model, layout.policy_weights(epoch))
        save_training_state(layout.training_state(epoch), model=model, optimizer=opt, scheduler=sched, extra={})
    (layout.policy_weights_dir / "policy_epoch_x.safetensors").write_bytes(b"")
    (layout.training_states_dir / "myrun_epoch_5").mkdir()  # no complete.json: a killed writer
    (layout.training_states_dir / "other_epoch_7").mkdir()
    assert layout.weight_epochs() == [2, 10] and layout.training_state_epochs() == [2, 10]


# ---------------------------------------------------------------------------------------------
# metamon's .pt state dicts (torch.load(weights_only=True) only)
# ---------------------------------------------------------------------------------------------


def _write_marker(path):
    """What a malicious checkpoint would run when unpickled: creates ``path``."""
    with open(path, "w") as f:
        f.write("executed")


class _Payload:
    """Pickles as a call of :func:`_write_marker`: loading it with a full unpickler runs code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_write_marker, (str(self.marker),))


def test_pt_state_dict_round_trip_and_shapes(tmp_path):
    model, _, _ = _trained()
    path = tmp_path / "policy_epoch_4.pt"
    torch.save(model.state_dict(), path)  # the way metamon saves its policy weights
    fresh = Tied()
    load_weights(fresh, path)
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    assert checkpoints.tensor_shapes(path) == {"inp.weight": (4, 4), "inp.bias": (4,), "out.weight": (4, 4),
                                               "out.bias": (4,), "count": (1,)}
    assert checkpoints.weights_differences(Tied(), path) == []
    small = torch.nn.Linear(4, 2)
    small_path = tmp_path / "small.pt"
    torch.save({"inp.weight": small.weight.detach()}, small_path)
    assert checkpoints.weights_differences(Tied(), small_path) == [
        "inp.weight: (2, 4) → (4, 4)", "only in the new model (4): count, inp.bias, out.bias, out.weight"]
    with pytest.raises(AmagoError, match=r"small\.pt.*inp\.weight: file \(2, 4\) vs model \(4, 4\).*missing keys"):
        load_weights(Tied(), small_path)


def test_pt_with_a_pickled_object_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save({"inp.weight": torch.zeros(4, 4), "payload": _Payload(marker)}, path)
    assert not marker.exists()
    with pytest.raises(AmagoError, match=r"refusing to load .*evil\.pt.*nothing in it was executed"):
        load_weights(Tied(), path)
    with pytest.raises(AmagoError, match="refusing to load"):
        checkpoints.tensor_shapes(path)
    assert not marker.exists()
    whole_module = tmp_path / "module.pt"
    torch.save(Tied(), whole_module)  # a pickled nn.Module, not a state dict
    with pytest.raises(AmagoError, match=r"refusing to load .*module\.pt"):
        load_weights(Tied(), whole_module)


def test_pt_that_is_not_a_flat_state_dict_is_refused(tmp_path):
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"state_dict": Tied().state_dict(), "epoch": 3}, wrapped)
    with pytest.raises(AmagoError, match=r"wrapped\.pt is not a flat state dict.*'epoch' \(int\)"):
        load_weights(Tied(), wrapped)
    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(AmagoError, match=r"list\.pt holds a list, not a state dict"):
        load_weights(Tied(), listed)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(AmagoError, match=r"cannot read the torch checkpoint .*garbage\.pt"):
        load_weights(Tied(), garbage)
    with pytest.raises(AmagoError, match=r"missing\.pt does not exist"):
        load_weights(Tied(), tmp_path / "missing.pt")
    with pytest.raises(AmagoError, match=r"weights\.npz has an unknown format"):
        load_weights(Tied(), tmp_path / "weights.npz")


class _Gated(torch.nn.Module):
    """A policy layer plus a schedule buffer that only some configurations have."""

    def __init__(self, gated: bool, fill: float):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)
        torch.nn.init.constant_(self.lin.weight, fill)
        self.gate = torch.nn.Module()
        self.gate.register_buffer("is_open", torch.tensor(fill > 0), persistent=gated)


@pytest.mark.parametrize("source_gated, target_gated", [(True, False), (False, True), (True, True)])
def test_skipped_prefixes_are_neither_loaded_nor_required(tmp_path, source_gated, target_gated):
    path = save_weights(_Gated(source_gated, fill=1.0), tmp_path / "w.safetensors")
    target = _Gated(target_gated, fill=-1.0)
    assert checkpoints.weights_differences(target, path, skip_prefixes=("gate.",)) == []
    missing, unexpected = load_weights(target, path, strict=True, skip_prefixes=("gate.",))
    assert (missing, unexpected) == ([], [])
    assert torch.equal(target.lin.weight, torch.ones(2, 2))  # the policy weights came from the file
    assert not bool(target.gate.is_open)  # the schedule buffer kept the target's own value
    if source_gated != target_gated:  # without skipping, the difference is an error
        assert checkpoints.weights_differences(target, path)
        with pytest.raises(AmagoError, match="keys"):
            load_weights(target, path, strict=True)
