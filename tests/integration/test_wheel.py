"""A wheel of the package works outside the source checkout.

Builds a wheel (``python -m build --wheel``, or ``pip wheel`` when ``build`` is not installed) from
a copy of the package, installs it with ``--no-deps`` into a fresh venv in ``tmp_path`` that sees
this venv's third-party packages through a ``.pth`` path line (no download; a path line does not
run the editable install's import hook, so ``metamon`` comes from the wheel only), and from a
working folder outside the repository:

1. resolves every bare gin config name to the wheel's own ``metamon/configs``;
2. generates battles with ``python -m metamon.data.generate``, which starts a server from the
   wheel (its ``config.js``; ``METAMON_SERVER_DIR`` points at this checkout's installed server);
3. trains ``tiny_agent.gin`` + ``il.gin`` for one short epoch with ``python -m metamon.rl.train``
   and checks that it wrote a checkpoint.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from metamon.server import server_dir, showdown_dir

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
FMT = "gen1ou"

# Run inside the wheel's venv: where metamon and every bare config name resolve.
CHECK = """
import json, sys
import metamon
from metamon.rl import MODEL_CONFIG_DIR, TRAINING_CONFIG_DIR
from metamon.rl.train import resolve_configs
from metamon.server import SERVER_FILES_DIR, server_dir
models, trainings = json.loads(sys.argv[1])
resolved = {}
for name in models:
    resolved[name] = str(resolve_configs(name, "il.gin")[0])
    resolved[name[:-4]] = str(resolve_configs(name[:-4], "il")[0])
for name in trainings:
    resolved[name] = str(resolve_configs("tiny_agent.gin", name)[1])
print(json.dumps({"metamon": metamon.__file__, "model_dir": str(MODEL_CONFIG_DIR),
                  "training_dir": str(TRAINING_CONFIG_DIR), "server_files": str(SERVER_FILES_DIR),
                  "server_dir": str(server_dir()), "resolved": resolved}))
"""


def _run(cmd, cwd, env, timeout):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} exited with {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _build_wheel(tmp_path: Path, env: dict) -> Path:
    """Build from a copy of the package, so no build/ or .egg-info lands in the checkout."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "metamon", src / "metamon", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    dist = tmp_path / "dist"
    if importlib.util.find_spec("build") is not None:  # no isolation: tests never download
        cmd = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, src]
    else:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", dist, src]
    _run(cmd, tmp_path, env, timeout=300)
    (wheel,) = dist.glob("metamon_gemma-*.whl")
    return wheel


def _fresh_venv(tmp_path: Path, wheel: Path, env: dict) -> Path:
    """A venv without pip that reuses this venv's site-packages, with the wheel installed."""
    root = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    site_packages = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              tmp_path, env, timeout=60).strip())
    outer = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site_packages / "_outer_venv.pth").write_text("".join(f"{p}\n" for p in sorted(outer)))
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel],
         tmp_path, env, timeout=300)
    return python


def test_wheel_resolves_configs_starts_the_server_and_trains(tmp_path):
    installed = server_dir()
    assert (showdown_dir(installed) / "dist").is_dir(), f"the Showdown server is not installed in {installed}"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "METAMON_CACHE_DIR")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", METAMON_SERVER_DIR=str(installed))

    wheel = _build_wheel(tmp_path, env)
    python = _fresh_venv(tmp_path, wheel, env)
    venv_root = python.parents[1].resolve()
    work = tmp_path / "work"  # outside the repository
    work.mkdir()

    models = sorted(p.name for p in (REPO / "metamon" / "configs" / "models").glob("*.gin"))
    trainings = sorted(p.name for p in (REPO / "metamon" / "configs" / "training").glob("*.gin"))
    assert {"small_agent.gin", "tiny_agent.gin"} <= set(models) and "il.gin" in trainings
    found = json.loads(_run([python, "-c", CHECK, json.dumps([models, trainings])], work, env, timeout=120))
    assert Path(found["metamon"]).resolve().is_relative_to(venv_root), found["metamon"]
    for key in ("model_dir", "training_dir", "server_files"):
        assert Path(found[key]).resolve().is_relative_to(venv_root), found[key]
    assert Path(found["server_dir"]) == installed
    model_dir, training_dir = Path(found["model_dir"]), Path(found["training_dir"])
    expected = {m: model_dir / m for m in models}
    expected.update({m[:-4]: model_dir / m for m in models})  # bare name without ".gin"
    expected.update({t: training_dir / t for t in trainings})
    assert {name: Path(path) for name, path in found["resolved"].items()} == expected

    data = work / "data"
    _run([python, "-m", "metamon.data.generate", "--player", "GymLeader", "--opponent", "Grunt",
          "--battle_format", FMT, "--num_battles", "2", "--output_dir", data, "--concurrent", "2",
          "--no_progress", "--seed", "0"], work, env, timeout=240)
    assert len(list((data / FMT).glob("*.json.lz4"))) == 4  # both perspectives of 2 battles

    _run([python, "-m", "metamon.rl.train", "--run_name", "wheel", "--save_dir", work / "runs",
          "--model_gin_config", "tiny_agent.gin", "--train_gin_config", "il.gin", "--parsed_replay_dir", data,
          "--formats", FMT, "--epochs", "1", "--steps_per_epoch", "2", "--batch_size_per_gpu", "2",
          "--dloader_workers", "0", "--ckpt_interval", "1", "--log_interval", "1", "--seed", "0", "--eval_gens"],
         work, env, timeout=300)
    run = work / "runs" / "wheel"
    assert (run / "ckpts" / "policy_weights" / "policy_epoch_0.safetensors").is_file()
    assert (model_dir / "tiny_agent.gin").read_text() in (run / "config.gin").read_text()
