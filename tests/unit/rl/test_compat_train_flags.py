"""``python -m metamon.rl.train --custom_replay_weight W`` (metamon 1.5's name) mixes the custom
replays in with weight W, exactly as metamon 1.4's ``--custom_replay_sample_weight W`` does."""

import pytest
from _tiny_replays import write_replays

from metamon.data.mixture import MixtureOfDatasets
from metamon.rl import train
from metamon.rl.train import config_from_argv

REQUIRED = ["--run_name", "r", "--save_dir", "runs", "--model_gin_config", "tiny_agent.gin",
            "--train_gin_config", "il.gin"]


@pytest.mark.parametrize("flag", ["--custom_replay_weight", "--custom_replay_sample_weight"])
def test_both_names_set_the_custom_replay_weight(flag):
    config = config_from_argv(REQUIRED + ["--custom_replay_dir", "mine", flag, "0.4"])
    assert config.custom_replay_dir == "mine" and config.custom_replay_sample_weight == 0.4


def test_default_is_metamons_quarter():
    assert config_from_argv(REQUIRED).custom_replay_sample_weight == 0.25


def test_help_names_both_flags(capsys):
    with pytest.raises(SystemExit):
        config_from_argv(["--help"])
    out = capsys.readouterr().out
    assert "--custom_replay_weight" in out and "--custom_replay_sample_weight" in out


def test_the_weight_reaches_the_mixture(tmp_path):
    main_dir, custom_dir = write_replays(tmp_path / "main"), write_replays(tmp_path / "custom", n_battles=2)
    config = config_from_argv(REQUIRED + [
        "--parsed_replay_dir", str(main_dir), "--custom_replay_dir", str(custom_dir),
        "--custom_replay_weight", "0.3", "--formats", "gen9ou", "--tokenizer", "metamon-gemma-v1",
        "--obs_space", "DefaultObservationSpace",
    ])
    data = train._datasets(config, *train._spaces(config))
    mixture = data.parsed_replay_dset
    assert isinstance(mixture, MixtureOfDatasets)
    assert mixture.probabilities == pytest.approx([0.7, 0.3])
    assert [len(d) for d in mixture.datasets] == [6, 2]


def test_featurized_cache_flag_reaches_both_datasets(tmp_path):
    main_dir, custom_dir = write_replays(tmp_path / "main"), write_replays(tmp_path / "custom", n_battles=2)
    cache = tmp_path / "featurized"
    config = config_from_argv(REQUIRED + [
        "--parsed_replay_dir", str(main_dir), "--custom_replay_dir", str(custom_dir), "--formats", "gen9ou",
        "--tokenizer", "metamon-gemma-v1", "--featurized_cache", str(cache),
    ])
    assert config.featurized_cache == str(cache) and f"--featurized_cache {cache}" in config.command_line()
    mixture = train._datasets(config, *train._spaces(config)).parsed_replay_dset
    for dset in mixture.datasets:
        dset[0]
        assert dset.featurized_cache.folder.parent == cache
        assert dset.featurized_cache.stats["writes"] == 1
    assert config_from_argv(REQUIRED).featurized_cache is None
