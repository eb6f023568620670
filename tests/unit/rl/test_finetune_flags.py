"""finetune_from_hf's flags: metamon's names and defaults (1.4.0, plus 1.5.1's), our additions,
the data mixture, the evaluation formats, and a run as the source (checked as untrusted gin)."""

import pytest

from metamon.amago.checkpoints import save_weights
from metamon.errors import MetamonError
from metamon.rl import MODEL_CONFIG_DIR, TRAINING_CONFIG_DIR, finetune_from_hf
from metamon.rl.finetune_from_hf import _evaluation_formats, _mixture_weight, _parser, resolve_source
from metamon.rl.run_dir import CONFIG_FILE, RunInfo, build_agent, policy_weights_path, write_run_files
from metamon.rl.safe_gin import UnsafeGinError

REQUIRED = ["--run_name", "r", "--save_dir", "runs", "--finetune_from_model", "SyntheticRLV2"]
INFO = RunInfo(observation_space="TeamPreviewObservationSpace", action_space="DefaultActionSpace",
               reward_function="BinaryReward", tokenizer="metamon-gemma-v1", formats=["gen1ou"], max_seq_len=64)


def test_metamon_defaults():
    args = _parser().parse_args(REQUIRED)
    assert (args.checkpoint, args.epochs, args.steps_per_epoch, args.batch_size_per_gpu, args.grad_accum) == (
        None, 10, 25_000, 12, 1)
    assert (args.train_gin_config, args.reward_function, args.dloader_workers) == (None, None, 10)
    assert (args.parsed_replay_dir, args.custom_replay_dir, args.custom_replay_weight) == (None, None, 0.25)
    assert (args.async_env_mp_context, args.formats, args.log, args.replay_weight) == ("forkserver", None, False, None)
    assert args.eval_gens is None and _evaluation_formats(args.eval_gens, None) == [
        "gen1ou", "gen2ou", "gen3ou", "gen4ou", "gen9ou"]
    assert args.val_battles == 0 and args.ckpt_interval == 2  # per-epoch battles off on CPU; metamon's interval


def test_aliases_and_metamon_1_5_flags():
    args = _parser().parse_args(REQUIRED + ["--custom_replay_sample_weight", "0.5", "--finetune_from_checkpoint", "4"])
    assert args.custom_replay_weight == 0.5 and args.checkpoint == 4
    args = _parser().parse_args(REQUIRED + ["--custom_replay_weight", "0.7", "--replay_weight", "0.3", "--ckpt", "6",
                                            "--eval_gens", "--log"])
    assert (args.custom_replay_weight, args.replay_weight, args.checkpoint, args.eval_gens, args.log) == (
        0.7, 0.3, 6, [], True)
    assert _evaluation_formats(args.eval_gens, None) == []  # no values: no evaluation


def test_exactly_one_source():
    base = ["--run_name", "r", "--save_dir", "runs"]
    with pytest.raises(SystemExit):
        _parser().parse_args(base)
    with pytest.raises(SystemExit):
        _parser().parse_args(base + ["--finetune_from_model", "A", "--finetune_from_run", "runs/x"])
    with pytest.raises(MetamonError, match="exactly one source"):
        resolve_source()


def test_mixture_weight():
    assert _mixture_weight(0.25, None) == 0.25  # metamon 1.4: [1 - w, w]
    assert _mixture_weight(1.0, None) == 1.0
    assert _mixture_weight(1.0, 1.0) == 0.5  # relative weights
    assert _mixture_weight(0.25, 0.75) == 0.25
    with pytest.raises(MetamonError, match=r"--custom_replay_weight 1\.5 must be in \[0, 1\]"):
        _mixture_weight(1.5, None)
    with pytest.raises(MetamonError, match="not both 0"):
        _mixture_weight(0.0, 0.0)


def test_evaluation_formats():
    assert _evaluation_formats([1, 9], None) == ["gen1ou", "gen9ou"]
    assert _evaluation_formats(None, ["gen1ou", "gen2uu"]) == ["gen1ou", "gen2uu"]  # the seeds' --battle_format
    with pytest.raises(MetamonError, match="not both"):
        _evaluation_formats([1], ["gen1ou"])
    with pytest.raises(MetamonError, match="gen1oux"):
        _evaluation_formats(None, ["gen1oux"])


def _run(run_dir, text=None):
    text = text or "\n".join([(MODEL_CONFIG_DIR / "tiny_agent.gin").read_text(),
                              (TRAINING_CONFIG_DIR / "il.gin").read_text()])
    write_run_files(run_dir, INFO, text)
    save_weights(build_agent(INFO, [run_dir / CONFIG_FILE]), policy_weights_path(run_dir, 3))
    return run_dir


def test_a_run_as_the_source(tmp_path):
    run = _run(tmp_path / "src")
    source = resolve_source(finetune_from_run=str(run))
    assert source.spec == f"run:{run.resolve()}@3"  # latest epoch
    assert source.model_gin == source.train_gin == str(run / CONFIG_FILE) and source.gin_params == {}
    assert (source.observation_space, source.reward_function, source.tokenizer) == (
        "TeamPreviewObservationSpace", "BinaryReward", "metamon-gemma-v1")
    other = resolve_source(finetune_from_run=str(run), checkpoint=3, train_gin_config="exp_rl")
    assert other.train_gin == "exp_rl" and other.model_gin == str(run / CONFIG_FILE)
    with pytest.raises(MetamonError, match=r"no epoch 0 \(available epochs: \[3\]\)"):
        resolve_source(finetune_from_run=str(run), checkpoint=0)


def test_a_runs_config_gin_is_data(tmp_path):
    run = _run(tmp_path / "src")
    (run / CONFIG_FILE).write_text("import os\n" + (run / CONFIG_FILE).read_text())
    with pytest.raises(UnsafeGinError, match="import"):
        resolve_source(finetune_from_run=str(run))


def test_bad_input_exits_2_before_writing(tmp_path, capsys):
    run = _run(tmp_path / "src")
    flags = ["--run_name", "new", "--save_dir", str(tmp_path), "--finetune_from_run", str(run)]
    for extra, message in [
        (["--eval_gens", "1", "--battle_format", "gen1ou"], "not both"),
        (["--eval_battles", "-1"], "--eval_battles must be >= 0"),
        (["--eval_opponents", "NoSuchBaseline"], "NoSuchBaseline"),
        (["--custom_replay_weight", "2"], "--custom_replay_weight 2.0 must be in"),
        (["--parsed_replay_dir", str(tmp_path / "missing")], "missing"),
    ]:
        with pytest.raises(SystemExit) as stop:
            finetune_from_hf.main(flags + extra)
        assert stop.value.code == 2 and message in capsys.readouterr().err
        assert not (tmp_path / "new").exists()
    with pytest.raises(SystemExit) as stop:
        finetune_from_hf.main(["--run_name", "../x", "--save_dir", str(tmp_path), "--finetune_from_run", str(run)])
    assert stop.value.code == 2 and "--run_name" in capsys.readouterr().err
