"""A server killed mid-run (issue 15, item 9): ``compete``, ``generate`` and ``evaluate`` stop within
seconds with a message naming the server and exit code 1, instead of waiting out the stall
timeout and exiting 0; ``generate`` keeps only complete files, ``evaluate`` writes no partial
results. Each test starts (and kills) a server of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metamon.data.trajectory_file import read_trajectory
from metamon.server import LocalShowdownServer

REPO = Path(__file__).resolve().parents[2]
STALL_TIMEOUT = "60"  # what the tools would wait before these fixes
MAX_REACTION_S = 25  # from the kill to the exit, imports and shutdown included


@pytest.fixture
def doomed_server(tmp_path):
    server = LocalShowdownServer(run_dir=tmp_path / "server")
    server.start(timeout=120)
    yield server
    server.stop()


def _connections(psutil, server) -> int:
    """Clients connected to ``server`` right now (server side of established TCP connections)."""
    return sum(1 for c in psutil.net_connections(kind="tcp")
               if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == server.port)


def _run_and_kill(server, cmd, ready, limit_s=240):
    """Start ``cmd``; once ``ready()`` is true, SIGKILL the server's whole process group (a crash)
    and wait for ``cmd`` to end. Returns (returncode, stdout, stderr, seconds from kill to exit)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    deadline = time.monotonic() + limit_s
    try:
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.5)
        time.sleep(2)  # battles in flight
        os.killpg(server._proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        stdout, stderr = proc.communicate(timeout=int(STALL_TIMEOUT) * 3)
        return proc.returncode, stdout, stderr, time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _server_connected(server, minimum=2):
    psutil = pytest.importorskip("psutil")
    return lambda: _connections(psutil, server) >= minimum


def _assert_stopped_for_the_lost_server(code, stderr, seconds, server):
    assert code == 1, stderr
    assert seconds < MAX_REACTION_S, f"took {seconds:.0f} s after the kill"
    assert "closed during the run" in stderr and f"127.0.0.1:{server.port}" in stderr, stderr


def test_compete_stops_when_the_server_dies(doomed_server):
    cmd = [sys.executable, "-m", "metamon.baselines.compete", "--battle_format", "gen1ou", "--player", "GymLeader",
           "--opponent", "Grunt", "--battles", "500", "--concurrent", "2",
           "--server_url", f"127.0.0.1:{doomed_server.port}", "--timeout", STALL_TIMEOUT]
    code, stdout, stderr, seconds = _run_and_kill(doomed_server, cmd, _server_connected(doomed_server))
    _assert_stopped_for_the_lost_server(code, stderr, seconds, doomed_server)
    assert "win rate" not in stdout and "wins" not in stdout


def test_generate_stops_when_the_server_dies_and_keeps_only_complete_files(doomed_server, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "metamon.data.generate", "--player", "GymLeader", "--opponent", "Grunt",
           "--battle_format", "gen1ou", "--num_battles", "500", "--output_dir", str(out),
           "--server_url", f"127.0.0.1:{doomed_server.port}", "--concurrent", "2", "--no_progress",
           "--timeout", STALL_TIMEOUT]
    code, stdout, stderr, seconds = _run_and_kill(
        doomed_server, cmd, lambda: len(list(out.glob("gen1ou/*.json.lz4"))) >= 2)
    _assert_stopped_for_the_lost_server(code, stderr, seconds, doomed_server)
    paths = list(out.glob("gen1ou/*"))
    assert paths and all(p.name.endswith(".json.lz4") for p in paths)  # no temporary leftovers
    for path in paths:
        assert read_trajectory(path)["actions"][-1] == -1  # complete battles only


def test_evaluate_stops_when_the_server_dies_and_writes_no_partial_results(doomed_server, tmp_path):
    from metamon.amago.checkpoints import save_weights
    from metamon.rl import MODEL_CONFIG_DIR, TRAINING_CONFIG_DIR
    from metamon.rl.run_dir import CONFIG_FILE, RunInfo, build_agent, policy_weights_path, write_run_files

    run = tmp_path / "runs" / "tiny"
    info = RunInfo(observation_space="DefaultObservationSpace", action_space="DefaultActionSpace",
                   reward_function="DefaultShapedReward", tokenizer="metamon-gemma-v1", formats=["gen1ou"],
                   max_seq_len=32)
    text = "\n".join([(MODEL_CONFIG_DIR / "tiny_agent.gin").read_text(),
                      (TRAINING_CONFIG_DIR / "il.gin").read_text(), "MetamonAMAGOExperiment.max_seq_len = 32\n"])
    write_run_files(run, info, text)
    save_weights(build_agent(info, [run / CONFIG_FILE]), policy_weights_path(run, 1))

    results = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "metamon.rl.evaluate", "--player", f"run:{run}@1", "--formats", "gen1ou",
           "--opponents", "GymLeader", "--battles", "500", "--max_concurrent", "2",
           "--server_url", f"127.0.0.1:{doomed_server.port}", "--json_out", str(results), "--device", "cpu",
           "--timeout", STALL_TIMEOUT]
    code, stdout, stderr, seconds = _run_and_kill(doomed_server, cmd, _server_connected(doomed_server))
    _assert_stopped_for_the_lost_server(code, stderr, seconds, doomed_server)
    assert not results.exists() and "win %" not in stdout
