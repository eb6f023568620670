"""Shared fixtures.

Tests never touch the network: the Hub is forced offline and every server is a local Showdown
started on a free port for this test session.
"""

import importlib.util
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import gin  # noqa: E402 - after the environment variables above
import pytest  # noqa: E402

from metamon.server import LocalShowdownServer  # noqa: E402


@pytest.fixture(autouse=True)
def clean_gin():
    """Every test starts and ends with gin's global configuration empty."""
    gin.clear_config()
    yield
    gin.clear_config()


@pytest.fixture(scope="session")
def load_script():
    """``load_script(path, name)``: a script that is not a package module (``benchmarks/*.py``)
    imported under ``name``."""

    def load(path, name: str):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def showdown_server(tmp_path_factory):
    """One real local Showdown server (127.0.0.1, free port) for the whole test session."""
    server = LocalShowdownServer(run_dir=tmp_path_factory.mktemp("showdown_run"))
    server.start(timeout=120)
    yield server
    server.stop()
