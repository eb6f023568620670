"""TrainConfig: the train CLI's flags as Python values (same names, same defaults, one check)."""

import dataclasses
import shlex

import pytest

from metamon.errors import MetamonError
from metamon.rl import train
from metamon.rl.train import TrainConfig, config_from_argv

REQUIRED = dict(run_name="r", save_dir="runs", model_gin_config="tiny_agent.gin", train_gin_config="il.gin")
REQUIRED_FLAGS = [f"--{k}={v}" for k, v in REQUIRED.items()]


def test_every_flag_is_a_field_with_the_same_default():
    parsed = vars(train._parser().parse_args(REQUIRED_FLAGS))
    assert set(parsed) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert config_from_argv(REQUIRED_FLAGS) == TrainConfig(**REQUIRED)


def test_flags_fill_the_config():
    config = config_from_argv(REQUIRED_FLAGS + [
        "--epochs", "3", "--formats", "gen1ou", "gen9ou", "--eval_gens", "--gin_bindings", "A.b = 1",
        "--gin_bindings", "C.d = 2", "--log", "--seed", "7", "--custom_replay_sample_weight", "0.5",
    ])
    assert config.epochs == 3 and config.formats == ("gen1ou", "gen9ou") and config.eval_gens == ()
    assert config.gin_bindings == ("A.b = 1", "C.d = 2") and config.log is True and config.seed == 7
    assert config.custom_replay_sample_weight == 0.5
    assert TrainConfig(**REQUIRED, eval_gens=[1, 9], formats=["gen1ou"]).eval_gens == (1, 9)


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, r"TrainConfig\.epochs \(--epochs\) must be an int >= 1, got 0"),
    ("steps_per_epoch", 2.5, r"steps_per_epoch .* must be an int >= 1, got 2\.5"),
    ("batch_size_per_gpu", True, r"batch_size_per_gpu .* got True"),
    ("dloader_workers", -1, r"dloader_workers .* must be an int >= 0, got -1"),
    ("custom_replay_sample_weight", 1.5, r"custom_replay_sample_weight .* must be a number in \[0, 1\]"),
    ("wins_losses_both", "all", r"wins_losses_both .* one of \('wins', 'losses', 'both'\)"),
    ("formats", "gen1ou", r"TrainConfig\.formats \(--formats\) must be a sequence of strings, got 'gen1ou'"),
    ("gin_bindings", ["A.b = 1", 3], r"gin_bindings .* sequence of strings"),
    ("eval_gens", ["1"], r"eval_gens .* sequence of ints"),
    ("ckpt", -1, r"ckpt .* None or an int >= 0"),
    ("run_name", "", r"run_name .* non-empty string"),
])
def test_bad_values_name_the_field(field, value, message):
    with pytest.raises(MetamonError, match=message):
        TrainConfig(**{**REQUIRED, field: value})


def test_cli_reports_bad_values_before_doing_anything(tmp_path):
    with pytest.raises(SystemExit, match=r"error: TrainConfig\.grad_accum \(--grad_accum\) must be an int >= 1"):
        train.main(["--run_name=r", f"--save_dir={tmp_path}", "--model_gin_config=tiny_agent.gin",
                    "--train_gin_config=il.gin", "--grad_accum", "0"])
    assert not (tmp_path / "r").exists()


def test_command_line_gives_back_the_same_config():
    config = TrainConfig(**REQUIRED, epochs=3, formats=["gen1ou", "gen9ou"], eval_gens=(),
                         gin_bindings=["A.b = 1", "C.d = 'x y'"], log=True, seed=7, custom_replay_dir="my data")
    command = config.command_line()
    assert command.startswith("python -m metamon.rl.train --run_name r --save_dir runs --model_gin_config tiny")
    assert "--gin_bindings 'A.b = 1' --gin_bindings" in command and "--eval_gens " in command + " "
    assert config_from_argv(shlex.split(command)[3:]) == config
    assert TrainConfig(**REQUIRED).command_line() == (
        "python -m metamon.rl.train --run_name r --save_dir runs --model_gin_config tiny_agent.gin "
        "--train_gin_config il.gin")
