"""The accelerate configs shipped in metamon/configs/accelerate/ load with accelerate's own config
loader (what `accelerate launch --config_file` uses) and say what their names promise."""

from pathlib import Path

import pytest
import tomllib
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.utils import DistributedType

from metamon.rl import ACCELERATE_CONFIG_DIR

EXPECTED = {
    "single_gpu.yaml": (DistributedType.NO, 1, False, None),
    "multi_gpu.yaml": (DistributedType.MULTI_GPU, 2, False, None),
    "deepspeed_zero2.yaml": (DistributedType.DEEPSPEED, 2, False, 2),
    "deepspeed_zero3.yaml": (DistributedType.DEEPSPEED, 2, False, 3),
    "cpu.yaml": (DistributedType.NO, 1, True, None),
}


def test_the_folder_holds_exactly_these_configs():
    assert sorted(p.name for p in ACCELERATE_CONFIG_DIR.glob("*.yaml")) == sorted(EXPECTED)


def test_the_wheel_ships_them():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[3] / "pyproject.toml").read_text())
    assert "configs/accelerate/*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["metamon"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_accelerate_loads_each_config(name):
    distributed, processes, use_cpu, zero_stage = EXPECTED[name]
    config = load_config_from_file(str(ACCELERATE_CONFIG_DIR / name))
    assert isinstance(config, ClusterConfig)
    assert config.distributed_type == distributed and config.num_processes == processes
    assert config.use_cpu is use_cpu and config.num_machines == 1
    assert str(config.mixed_precision) == "no"  # precision comes from gin, not from these files
    if zero_stage is None:
        assert not config.deepspeed_config
    else:
        ds = config.deepspeed_config
        assert ds["zero_stage"] == zero_stage and ds["gradient_clipping"] == 1.0
        assert "gradient_accumulation_steps" not in ds  # --grad_accum decides
