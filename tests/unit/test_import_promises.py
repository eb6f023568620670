"""Modules that promise not to load a heavy dependency at import time keep that promise.

Each check runs in a fresh interpreter (``sys.modules`` of this process is shared by every test).
"""

import subprocess
import sys

import pytest

PROMISES = {
    # module: packages that importing it must not load
    "metamon": ["torch", "poke_env", "metamon.server"],
    "metamon.data": ["torch"],
    "metamon.data.trajectory_file": ["torch"],
    "metamon.data.parsed_replay_dset": ["torch"],  # metamon's dataset reads files without torch
    "metamon.tokenizer": ["torch", "poke_env"],
    "metamon.server": ["torch", "poke_env"],
    "metamon.amago": ["torch", "accelerate"],
    "metamon.rl.agent_config": ["transformers", "peft"],
    "metamon.rl.gemma_tiny": ["torch", "transformers"],
}


@pytest.mark.parametrize("module", sorted(PROMISES))
def test_import_does_not_load_heavy_dependencies(module):
    code = f"import sys, {module}; print(' '.join(m for m in {PROMISES[module]!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
