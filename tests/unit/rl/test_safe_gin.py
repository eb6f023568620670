"""A run folder's config.gin is data: loading a run never runs code named by its gin (issue 15,
item 7). Each hostile config is refused with its file and line before any of it runs; every
shipped config and a run written the way ``train`` writes it still load."""

from __future__ import annotations

import sys
from pathlib import Path

import gin
import pytest

from metamon.amago.checkpoints import save_weights
from metamon.rl import MODEL_CONFIG_DIR, TRAINING_CONFIG_DIR, MetamonRLError
from metamon.rl.agent_config import configure_agent
from metamon.rl.run_dir import CONFIG_FILE, RunInfo, build_agent, load_agent, policy_weights_path, write_run_files
from metamon.rl.safe_gin import UnsafeGinError, check_gin, parse_untrusted_gin

MODELS = sorted(MODEL_CONFIG_DIR.glob("*.gin"))
TRAINING = sorted(TRAINING_CONFIG_DIR.glob("*.gin"))

# The structure every run's config.gin binds, with module paths (dynamic registration needs them).
DYNAMIC_STRUCTURE = """\
from metamon.amago import agent
from metamon.rl import experiment
from metamon.rl import tstep_encoders
from metamon.amago.nets import traj_encoders
experiment.MetamonAMAGOExperiment.agent_type = @agent.Agent
experiment.MetamonAMAGOExperiment.tstep_encoder_type = @tstep_encoders.MetamonTstepEncoder
experiment.MetamonAMAGOExperiment.traj_encoder_type = @traj_encoders.TformerTrajEncoder
experiment.MetamonAMAGOExperiment.max_seq_len = 32
"""


def _info(max_seq_len=64):
    return RunInfo(observation_space="DefaultObservationSpace", action_space="DefaultActionSpace",
                   reward_function="DefaultShapedReward", tokenizer="metamon-gemma-v1", formats=["gen1ou"],
                   max_seq_len=max_seq_len)


def _train_style_config(bindings=("MetamonAMAGOExperiment.max_seq_len = 32",)) -> str:
    """config.gin as ``train`` writes it: model gin, training gin, then the --gin_bindings."""
    model, training = MODEL_CONFIG_DIR / "tiny_agent.gin", TRAINING_CONFIG_DIR / "il.gin"
    parts = [f"# {model.name}\n{model.read_text()}", f"# {training.name}\n{training.read_text()}",
             "# --gin_bindings\n" + "\n".join(bindings)]
    return "\n\n".join(parts) + "\n"


def _run_with_config(run_dir: Path, hostile_text: str) -> Path:
    """A complete run (run.json, weights of epoch 1) whose config.gin is then replaced."""
    info = _info(max_seq_len=32)
    write_run_files(run_dir, info, _train_style_config())
    agent = build_agent(info, [run_dir / CONFIG_FILE])
    save_weights(agent, policy_weights_path(run_dir, 1))
    (run_dir / CONFIG_FILE).write_text(hostile_text)
    return run_dir / CONFIG_FILE


def test_dynamic_registration_cannot_run_a_command(tmp_path):
    marker = tmp_path / "ran"
    hostile = (
        "from __gin__ import dynamic_registration\n"
        "import subprocess\n"
        + DYNAMIC_STRUCTURE
        + f"subprocess.getoutput.cmd = 'id > {marker}'\n"
        "tstep_encoders.MetamonTstepEncoder.dropout = @subprocess.getoutput()\n"
    )
    config = _run_with_config(tmp_path / "run", hostile)
    with pytest.raises(UnsafeGinError, match=rf"{config}:1: .*dynamic registration"):
        load_agent(tmp_path / "run")
    assert not marker.exists()


def test_an_import_outside_metamon_is_refused_before_it_runs(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "planted_module.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    hostile = _train_style_config() + "import planted_module\n"
    config = _run_with_config(tmp_path / "run", hostile)
    line = hostile.splitlines().index("import planted_module") + 1
    with pytest.raises(UnsafeGinError, match=rf"{config}:{line}: 'import planted_module' is refused"):
        load_agent(tmp_path / "run")
    assert not marker.exists() and "planted_module" not in sys.modules
    with pytest.raises(UnsafeGinError, match=r"'import os' is refused"):
        check_gin("import os\n", "x.gin")
    with pytest.raises(UnsafeGinError, match=r"'from subprocess import getoutput' is refused"):
        check_gin("from subprocess import getoutput\n", "x.gin")


@pytest.mark.parametrize(
    "line, why",
    [
        ("include '/etc/passwd'", "include '/etc/passwd' is refused"),
        ("MetamonTstepEncoder.dropout = @os.system()", r"'os.system', which is not a registered configurable"),
        ("MetamonTstepEncoder.dropout = [1, {'a': @gin.singleton()}]", r"'gin.singleton' \(gin.singleton\)"),
        ("gin.constant.name = 'X'", r"'gin.constant' \(gin.constant\), which is not one of metamon's"),
        ("scope/os.system.command = 'id'", r"the line binds 'os.system'"),
    ],
)
def test_includes_and_foreign_configurables_are_refused(tmp_path, line, why):
    text = _train_style_config() + "\n" + line + "\n"
    number = len(text.splitlines())
    with pytest.raises(UnsafeGinError, match=rf"cfg.gin:{number}: .*{why}"):
        parse_untrusted_gin(text, "cfg.gin")


def test_configure_agent_untrusted_bindings_are_checked_too():
    with pytest.raises(UnsafeGinError, match=r"binding .*: 'import subprocess' is refused"):
        configure_agent([MODEL_CONFIG_DIR / "tiny_agent.gin"], bindings=["import subprocess"], untrusted=True)


def test_syntax_errors_name_the_line():
    with pytest.raises(MetamonRLError, match=r"cfg.gin:2: not valid gin"):
        check_gin("MetamonTstepEncoder.d_model = 1\nMetamonTstepEncoder.n_layers = = 2\n", "cfg.gin")


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.name)
@pytest.mark.parametrize("training", TRAINING, ids=lambda p: p.name)
def test_every_shipped_config_loads_as_untrusted(model, training):
    trusted = configure_agent([model, training], tokenizer="metamon-gemma-v1")
    trusted_config = gin.config_str()
    untrusted = configure_agent([model, training], tokenizer="metamon-gemma-v1", untrusted=True)
    assert untrusted == trusted
    assert gin.config_str() == trusted_config


def test_a_run_written_like_train_writes_it_loads(tmp_path):
    config = _run_with_config(tmp_path / "run", _train_style_config())
    agent, info = load_agent(config.parent)
    assert info.max_seq_len == 32 and agent.traj_encoder.max_seq_len == 32
    assert gin.query_parameter("metamon.amago.agent.Agent.fake_filter") is True  # il.gin's binding
