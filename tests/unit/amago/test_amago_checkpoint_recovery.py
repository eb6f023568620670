"""A checkpoint appears all at once: a process killed at any point of a save leaves a run that the
next process resumes exactly (or starts cleanly), with no stale temporary files.

The "kill" is simulated in process: the k-th file write of the save raises a ``BaseException``
right after the write, the way SIGKILL would stop the writer between two files. The leftovers are
then aged (mtime one hour back) to look like files of a previous process.
"""

import os
import time

import pytest
import torch

from metamon.amago import checkpoints
from metamon.amago.checkpoints import is_complete
from metamon.amago.run_layout import RunLayout

import _amago_tiny_run as tiny

EPOCHS = 2


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing on the way catches it."""


@pytest.fixture(autouse=True)
def tiny_gin():
    tiny.configure()


def _experiment(base):
    return tiny.make_experiment(base, epochs=EPOCHS, train_batches_per_epoch=2)


def _params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tiny.configure()
    exp = _experiment(tmp_path_factory.mktemp("reference"))
    exp.start()
    exp.learn()
    return _params(exp.policy), exp.grad_update_counter


def _kill_at_write(monkeypatch, k):
    """Make the k-th file write of the checkpoint code (weights, JSON, training-state files)
    raise :class:`Killed` just after the file is written."""
    count = {"n": 0}

    def after_write():
        count["n"] += 1
        if count["n"] == k:
            raise Killed(f"killed after write {k}")

    save_file, atomic_write = checkpoints.save_file, checkpoints.atomic_write

    def killing_save_file(tensors, path, **kwargs):
        save_file(tensors, path, **kwargs)
        after_write()

    def killing_atomic_write(path, data):
        atomic_write(path, data)
        after_write()

    monkeypatch.setattr(checkpoints, "save_file", killing_save_file)
    monkeypatch.setattr(checkpoints, "atomic_write", killing_atomic_write)
    return count


def _age(root):
    """Make everything under ``root`` look one hour old (written by an earlier process)."""
    old = time.time() - 3600
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (old, old))


def _hidden(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*"))


def _writes_per_save(tmp_path, monkeypatch):
    count = _kill_at_write(monkeypatch, k=-1)
    exp = tiny.make_experiment(tmp_path / "count", epochs=1, train_batches_per_epoch=1)
    exp.start()
    exp.learn()
    monkeypatch.undo()
    tiny.configure()
    return count["n"]


def test_a_save_writes_the_files_this_test_kills_between(tmp_path, monkeypatch):
    # training state: rng (.safetensors, .json), model, optimizer (2), scheduler, progress,
    # complete.json; then the epoch's weights; then latest/policy.safetensors
    assert _writes_per_save(tmp_path, monkeypatch) == 10


@pytest.mark.parametrize("k", range(1, 11))
def test_kill_at_every_write_of_the_first_save_then_restart(tmp_path, monkeypatch, uninterrupted, k):
    base = tmp_path / "runs"
    _kill_at_write(monkeypatch, k)
    exp = _experiment(base)
    exp.start()
    with pytest.raises(Killed):
        exp.learn()
    monkeypatch.undo()
    tiny.configure()
    layout = RunLayout.of(base, "run")
    _age(layout.root)

    restarted = _experiment(base)
    restarted.start()  # start-up recovery
    assert _hidden(layout.root) == []
    # all at once: an epoch has weights exactly when it has a complete training state
    assert layout.weight_epochs() == layout.training_state_epochs()
    epochs = restarted.available_epochs()
    assert epochs in ([], [0])
    if epochs:
        restarted.load_checkpoint(epochs[-1])
    restarted.learn()
    final, updates = uninterrupted
    assert restarted.grad_update_counter == updates
    for key, value in final.items():
        assert torch.equal(value, restarted.policy.state_dict()[key]), key
    assert layout.weight_epochs() == layout.training_state_epochs() == [0, 1]


def test_weights_are_written_after_the_training_state(tmp_path, monkeypatch):
    """The epoch's weights file is the last file of its checkpoint: killed just before it, the
    training state is there and the weights are not; the restart writes them from the state."""
    order = []
    save_weights, save_state = checkpoints.save_weights, checkpoints.save_training_state

    def recording_save_weights(module, path):
        if "training_states" not in str(path):  # not the copy inside the training state
            order.append(("weights", path.name))
        return save_weights(module, path)

    def recording_save_state(directory, **kwargs):
        out = save_state(directory, **kwargs)
        order.append(("state", directory.name))
        return out

    monkeypatch.setattr(checkpoints, "save_weights", recording_save_weights)
    monkeypatch.setattr(checkpoints, "save_training_state", recording_save_state)
    exp = tiny.make_experiment(tmp_path, epochs=1, train_batches_per_epoch=1)
    exp.start()
    exp.learn()
    assert order == [("state", "run_epoch_0"), ("weights", "policy_epoch_0.safetensors"),
                     ("weights", "policy.safetensors")]


def test_restart_cleans_stale_temporary_files_and_finishes_interrupted_renames(tmp_path):
    exp = tiny.make_experiment(tmp_path, epochs=2, train_batches_per_epoch=1)
    exp.start()
    exp.learn()
    layout = exp.layout
    state0 = layout.training_state(0)
    # killed between "move the old epoch-1 state aside" and "rename the new one into place"
    os.replace(layout.training_state(1), layout.training_states_dir / ".run_epoch_1.old")
    # killed while copying a staging dir, and while writing single files
    partial = layout.training_states_dir / ".run_epoch_2.partial"
    partial.mkdir()
    (partial / "rng.json").write_text("{}")
    stale_files = [layout.policy_weights_dir / ".policy_epoch_2.safetensors.abc123.tmp",
                   layout.ckpts / ".config.txt.x1.tmp", layout.root / ".run.json.zz.tmp",
                   layout.latest_weights.parent / ".policy.safetensors.q.tmp"]
    for f in stale_files:
        f.write_bytes(b"half")
    _age(layout.root)
    fresh = layout.policy_weights_dir / ".policy_epoch_3.safetensors.new.tmp"
    fresh.write_bytes(b"another process is writing this right now")

    restarted = tiny.make_experiment(tmp_path, epochs=2, train_batches_per_epoch=1)
    restarted.start()
    assert _hidden(layout.root) == [str(fresh.relative_to(layout.root))]  # only files older than us go
    assert is_complete(layout.training_state(1)) and is_complete(state0)
    assert layout.training_state_epochs() == layout.weight_epochs() == [0, 1]
    restarted.load_checkpoint(1)
