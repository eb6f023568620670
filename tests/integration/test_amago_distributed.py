"""Two-process data-parallel training of the AMAGO Experiment on CPU (gloo), via accelerate.

Runs tests/unit/amago/_amago_tiny_run.py under ``accelerate launch --multi_gpu --num_processes 2``
with ``ACCELERATE_USE_CPU=true``. (``accelerate launch --cpu --num_processes 2`` starts a single
process unless mpirun is configured; ``--multi_gpu`` + ``ACCELERATE_USE_CPU`` gives torchrun with
the MULTI_CPU/gloo backend.) Both ranks must end with the same update count and bitwise-equal
parameters, and the checkpoint must hold one RNG state per rank.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from metamon.server import find_free_port

SCRIPT = Path(__file__).parents[1] / "unit" / "amago" / "_amago_tiny_run.py"
sys.path.insert(0, str(SCRIPT.parent))  # the helper lives next to the unit tests that import it
try:
    import _amago_tiny_run as tiny  # noqa: E402 (needs the sys.path entry above)
finally:
    sys.path.remove(str(SCRIPT.parent))


@pytest.mark.slow
def test_two_cpu_processes_stay_in_sync(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "true"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(find_free_port()),
           str(SCRIPT), "--base_dir", str(tmp_path), "--out", str(tmp_path / "final")]
    proc = subprocess.run(cmd, env=env, cwd=SCRIPT.parent, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    infos = [json.loads((tmp_path / f"final.rank{r}.json").read_text()) for r in (0, 1)]
    assert [i["num_processes"] for i in infos] == [2, 2]
    assert [i["grad_update_counter"] for i in infos] == [16, 16]  # 4 epochs x 4 batches per process

    tiny.configure()
    try:
        agent = tiny.make_experiment(tmp_path / "unused", dataset=None).build_agent()
    finally:
        tiny.gin.clear_config()
    param_names = [n for n, _ in agent.named_parameters()]
    w0, w1 = (load_file(str(tmp_path / f"final.rank{r}.safetensors")) for r in (0, 1))
    # parameters (incl. target copies) are synchronised; normalisation buffers are updated by each
    # rank's last forward and only re-broadcast from rank 0 at the next one, so they may differ
    for name in param_names:
        assert (w0[name] == w1[name]).all(), name
    state = tmp_path / "run" / "ckpts" / "training_states" / "run_epoch_3"
    assert {"rng.json", "rng_1.json", "complete.json"} <= {p.name for p in state.iterdir()}
