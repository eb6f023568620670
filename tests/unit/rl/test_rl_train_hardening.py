"""``python -m metamon.rl.train`` against careless input, on trajectory files written in tmp_path
(no server): a diverging run stops before anything non-finite is saved, a failed resume changes
nothing, a kill while saving never leaves the run stuck, run names stay inside the save
directory, bad gin types and bad save directories are one-line errors (exit code 2) that name the
binding or the flag."""

import os
import time

import gin
import pytest
import torch
from safetensors.torch import load_file
from test_rl_dataset import FMT, write_battle

from metamon.amago import checkpoints
from metamon.amago.run_layout import RunLayout
from metamon.errors import MetamonError
from metamon.rl import MetamonRLError, evaluate, train
from metamon.rl.run_dir import RunInfo, available_epochs, load_agent, run_path
from metamon.rl.train import TrainConfig


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing on the way catches it."""



@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("battles")
    for i in range(3):
        write_battle(root, i)
    return root


def _flags(data, save_dir, *extra, run_name="r"):
    return [
        "--run_name", run_name, "--save_dir", str(save_dir), "--model_gin_config", "tiny_agent",
        "--train_gin_config", "il", "--parsed_replay_dir", str(data), "--formats", FMT,
        "--epochs", "2", "--steps_per_epoch", "1", "--batch_size_per_gpu", "2", "--dloader_workers", "0",
        "--ckpt_interval", "1", "--log_interval", "1", "--seed", "0", "--eval_gens", *extra,
    ]


def _usage_error(flags, message):
    """``train.main(flags)`` stops with exit code 2 and a one-line message matching ``message``."""
    with pytest.raises(SystemExit, match=message) as error:
        train.main(flags)
    assert error.value.code == 2
    text = str(error.value)
    assert text.startswith("error: ") and "\n" not in text and "Traceback" not in text
    return text


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _age(root):
    old = time.time() - 3600
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (old, old))


# ------------------------------------------------------------ 1. a run whose updates go non-finite


def test_a_diverging_run_stops_with_one_line_and_saves_nothing_non_finite(data, tmp_path):
    """The issue's case through the CLI: with a learning rate of 1e30 the updates turn non-finite
    after the first few; the run stops after ``max_nonfinite_updates`` of them in a row (exit
    2, one line), and the checkpoints it wrote before are finite."""
    _usage_error(
        _flags(data, tmp_path, "--steps_per_epoch", "4",
               "--gin_bindings", "MetamonAMAGOExperiment.learning_rate = 1e30",
               "--gin_bindings", "MetamonAMAGOExperiment.max_nonfinite_updates = 3"),
        r"3 updates in a row had a non-finite loss or gradient.*stopped before anything non-finite was applied",
    )
    saved = sorted((tmp_path / "r").rglob("*.safetensors"))
    assert saved, "epoch 0 finished, so its checkpoint exists"
    for path in saved:
        for key, tensor in load_file(path).items():
            assert torch.isfinite(tensor).all(), f"{path.name}: {key}"


# ------------------------------------------------------------------------- 3. failed resumes


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("runs")
    gin.clear_config()
    assert train.main(_flags(data, save_dir)) == 0
    return save_dir


@pytest.mark.parametrize("extra, message", [
    (["--ckpt", "99"], r"no complete training state for epoch 99.* resumable epochs: \[0, 1\]"),
    (["--ckpt", "1", "--gin_bindings", "TformerTrajEncoder.d_model = 32"],
     r"different architecture \(checkpoint → these gin files\): \S+: \(\d+, 64\) → \(\d+, 32\)"),
    (["--ckpt", "1", "--model_gin_config", "small_agent"], r"max_seq_len: 64 → 200.*different architecture"),
    (["--ckpt", "1", "--obs_space", "DefaultObservationSpace"],
     r"observation_space: 'TeamPreviewObservationSpace' → 'DefaultObservationSpace'"),
    (["--ckpt", "1", "--reward_function", "BinaryReward"],
     r"reward_function: 'DefaultShapedReward' → 'BinaryReward'"),
    (["--ckpt", "1", "--action_space", "MinimalActionSpace"],
     r"action_space: 'DefaultActionSpace' → 'MinimalActionSpace'"),
])
def test_a_refused_resume_writes_nothing(data, trained, extra, message):
    run = trained / "r"
    before = _snapshot(run)
    _usage_error(_flags(data, trained, *extra), message)
    assert _snapshot(run) == before  # run.json, config.gin, ckpts/config.txt, logs: untouched
    agent, info = load_agent(run, 1)  # the run's checkpoints still load
    assert info.observation_space == "TeamPreviewObservationSpace"


def test_a_resume_with_the_same_setup_keeps_the_run_and_its_creation_date(data, trained):
    created = RunInfo.load(trained / "r").created
    time.sleep(1.1)
    assert train.main(_flags(data, trained, "--ckpt", "0", "--gin_bindings",
                             "MetamonAMAGOExperiment.learning_rate = 1e-3")) == 0
    assert RunInfo.load(trained / "r").created == created
    assert "learning_rate = 1e-3" in (trained / "r" / "config.gin").read_text()
    load_agent(trained / "r", 1)


def test_resume_of_weights_without_training_state_explains_why(data, tmp_path):
    assert train.main(_flags(data, tmp_path, "--epochs", "1")) == 0
    layout = RunLayout(tmp_path / "r")
    checkpoints.save_weights(load_agent(layout.root, 0)[0], layout.policy_weights(5))
    _usage_error(_flags(data, tmp_path, "--ckpt", "5"),
                 r"epoch 5 has policy weights but no complete training state.*resumable epochs: \[0\]")


# ------------------------------------------------------------------- 4. kills while saving


def _kill_at_write(monkeypatch, k):
    """The k-th checkpoint file write raises :class:`Killed` (after writing its temporary file)."""
    count = {"n": 0}
    save_file, atomic_write = checkpoints.save_file, checkpoints.atomic_write

    def after_write():
        count["n"] += 1
        if count["n"] == k:
            raise Killed

    def killing_save_file(tensors, path, **kwargs):
        save_file(tensors, path, **kwargs)
        after_write()

    def killing_atomic_write(path, data):
        atomic_write(path, data)
        after_write()

    monkeypatch.setattr(checkpoints, "save_file", killing_save_file)
    monkeypatch.setattr(checkpoints, "atomic_write", killing_atomic_write)


@pytest.mark.parametrize("k, resumes_at", [
    (1, None),  # first file of the training state: nothing of epoch 0 exists; a new run starts
    (7, None),  # last file before complete.json
    (8, None),  # complete.json written, staging dir not yet renamed into place: not part of the run
    (9, 0),     # training state in place, weights not: the restart writes them
    (10, 0),    # everything but latest/: the checkpoint is complete
])
def test_a_kill_while_saving_never_leaves_the_run_stuck(data, tmp_path, monkeypatch, k, resumes_at):
    _kill_at_write(monkeypatch, k)
    with pytest.raises(Killed):
        train.main(_flags(data, tmp_path))
    monkeypatch.undo()
    run = tmp_path / "r"
    _age(run)
    if resumes_at is None:
        assert train.main(_flags(data, tmp_path)) == 0
    else:
        _usage_error(_flags(data, tmp_path), r"already holds checkpoints \[0\]: pass --ckpt N")
        assert train.main(_flags(data, tmp_path, "--ckpt", str(resumes_at))) == 0
    layout = RunLayout(run)
    assert layout.weight_epochs() == layout.training_state_epochs() == [0, 1]
    assert sorted(str(p.relative_to(run)) for p in run.rglob(".*")) == []
    load_agent(run, 0)


# ------------------------------------------------------------------------------ 5. run names


@pytest.mark.parametrize("name", ["../x", "/var/abs", "a/b", ".", "..", "", "a\\b", "x\x00y"])
def test_run_names_that_leave_the_save_dir_are_refused(data, tmp_path, name):
    with pytest.raises(MetamonError, match=r"TrainConfig\.run_name \(--run_name\) must be"):
        TrainConfig(run_name=name, save_dir=str(tmp_path), model_gin_config="tiny_agent", train_gin_config="il")
    with pytest.raises(MetamonRLError, match=r"--run_name"):
        run_path(tmp_path, name)
    _usage_error(_flags(data, tmp_path / "save", run_name=name), r"--run_name")
    assert not (tmp_path / "save").exists() and not (tmp_path / "x").exists()


def test_ordinary_run_names_are_kept():
    for name in ("demo", "gen1-il.v2", "run_07", ".hidden-ok", "with space"):
        assert run_path("runs", name).name == name


# --------------------------------------------------------------------- 6. gin types, OS errors


@pytest.mark.parametrize("binding, message", [
    ("MetamonAMAGOExperiment.learning_rate = 'fast'",
     r"MetamonAMAGOExperiment\.learning_rate = 'fast': expected a number"),
    ("Experiment.learning_rate = 'fast'", r"Experiment\.learning_rate = 'fast': expected a number"),
    ("TformerTrajEncoder.d_model = 'big'", r"TformerTrajEncoder\.d_model = 'big': expected an int"),
    ("MetamonTstepEncoder.n_layers = 2.5", r"MetamonTstepEncoder\.n_layers = 2\.5: expected an int"),
    ("Agent.fake_filter = 'yes'", r"Agent\.fake_filter = 'yes': expected True or False"),
    ("MetamonAMAGOExperiment.mixed_precision = 16", r"mixed_precision = 16: expected a string"),
])
def test_bad_gin_types_name_the_binding(data, tmp_path, binding, message):
    _usage_error(_flags(data, tmp_path, "--gin_bindings", binding), message)
    assert not (tmp_path / "r").exists()


def test_bad_gin_types_in_a_file_name_the_binding(data, tmp_path):
    bad = tmp_path / "fast.gin"
    bad.write_text("import metamon.rl.experiment\nMetamonAMAGOExperiment.learning_rate = 'fast'\n")
    _usage_error(_flags(data, tmp_path, "--train_gin_config", str(bad)),
                 r"MetamonAMAGOExperiment\.learning_rate = 'fast': expected a number")


def test_save_dir_that_is_a_file_is_a_one_line_error(data, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    _usage_error(_flags(data, afile), r"--save_dir .*afile is a file, not a folder")
    _usage_error(_flags(data, afile / "below"), r"--save_dir .*afile is a file, not a folder")
    assert afile.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_save_dir_is_a_one_line_error(data, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        _usage_error(_flags(data, ro), r"--save_dir .*ro is not writable")
    finally:
        ro.chmod(0o755)


def test_unwritable_save_dir_is_a_one_line_error_for_any_user(data, tmp_path, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == str(tmp_path) else real_access(p, mode))
    _usage_error(_flags(data, tmp_path / "new"), r"--save_dir .*new cannot be created: .* is not writable")
    assert available_epochs(tmp_path / "new" / "r") == []


def test_a_run_whose_config_has_a_bad_type_is_a_one_line_evaluate_error(trained, tmp_path, capsys):
    run = tmp_path / "copy"
    run.mkdir()
    (run / "run.json").write_bytes((trained / "r" / "run.json").read_bytes())
    text = (trained / "r" / "config.gin").read_text() + "\nTformerTrajEncoder.d_model = 'big'\n"
    (run / "config.gin").write_text(text)
    layout = RunLayout(run)
    layout.policy_weights_dir.mkdir(parents=True)
    trained_weights = trained / "r" / "ckpts" / "policy_weights" / "policy_epoch_1.safetensors"
    layout.policy_weights(1).write_bytes(trained_weights.read_bytes())
    with pytest.raises(MetamonRLError, match=r"TformerTrajEncoder\.d_model = 'big': expected an int"):
        load_agent(run, 1)
    assert evaluate.main(["--player", f"run:{run}@1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TformerTrajEncoder.d_model = 'big': expected an int" in err[0]
