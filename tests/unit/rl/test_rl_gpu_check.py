"""benchmarks/gpu_check.sh without a GPU: the script parses (bash -n), its dry run lists every
step, and every benchmark command in it is accepted by benchmarks/gemma_encoder.py's parser."""

import importlib.util
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
BENCH = ROOT / "benchmarks" / "gemma_encoder.py"
STEPS = ["device", "model", "bf16_L128", "bf16_L200", "nf4_L128", "test_4bit"]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def dry_run(tmp_path, *args):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "GPU_CHECK_DRY_RUN": "1"}
    done = subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return (tmp_path / "out" / "summary.txt").read_text().splitlines()


def test_syntax():
    done = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.parametrize("gemma_dir", ["tokenizer_only", "full_model", None])
def test_dry_run_lists_every_step_and_the_benchmark_takes_its_flags(tmp_path, gemma_dir):
    args = []
    if gemma_dir is not None:
        folder = tmp_path / gemma_dir
        folder.mkdir()
        (folder / "tokenizer.json").write_text("{}")
        if gemma_dir == "full_model":
            (folder / "model.safetensors").write_text("")
        args = [str(folder)]
    lines = dry_run(tmp_path, *args)
    names = [line.split(":")[0] for line in lines]
    assert [n for n in names if n in STEPS] == STEPS  # "model" is a step or, with weights, a note
    assert lines[-1].startswith("total ")
    if gemma_dir == "tokenizer_only":
        assert any("--hf_tokenizer" in line for line in lines)
    if gemma_dir == "full_model":
        assert any("its weights and tokenizer" in line for line in lines)
    if gemma_dir is None:
        assert any("local BPE" in line for line in lines)

    spec = importlib.util.spec_from_file_location("gemma_encoder_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    runs = [shlex.split(line.split(": ", 1)[1]) for line in lines if line.split(":")[0].startswith(("bf16", "nf4"))]
    assert len(runs) == 3
    for argv in runs:
        args = bench._parser().parse_args(argv[argv.index(str(BENCH.relative_to(ROOT))) + 1:])
        assert args.device == "cuda" and args.paths == ["ours"] and args.json_out is not None
    assert {tuple(bench._parser().parse_args(r[2:]).dtype) for r in runs} == {("bf16",), ("nf4",)}
    assert {tuple(bench._parser().parse_args(r[2:]).seq_len) for r in runs} == {(128,), (200,)}


def test_benchmark_precisions_and_4bit_refusal_on_cpu():
    spec = importlib.util.spec_from_file_location("gemma_encoder_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = bench._parser().parse_args(["--dtype", "bf16", "nf4", "--batch", "1", "--seq_len", "128",
                                       "--paths", "ours", "--gradient_checkpointing"])
    cases = bench._cases(args, "cuda", {"270m": Path("m")})
    assert [(c["dtype"], c["four_bit"]) for c in cases] == [("bf16", False), ("bf16", True)]
    assert all(c["gradient_checkpointing"] for c in cases)
    args = bench._parser().parse_args(["--dtype", "nf4", "--four_bit", "--batch", "1", "--seq_len", "128",
                                       "--paths", "ours"])
    cases = bench._cases(args, "cuda", {"270m": Path("m")})
    assert [(c["dtype"], c["four_bit"]) for c in cases] == [("bf16", True)]  # nf4 once
    with pytest.raises(SystemExit, match="needs --device cuda"):
        bench.main(["--device", "cpu", "--dtype", "nf4"])
