import socket
import subprocess
import sys

import pytest

from metamon.errors import ServerError
from metamon.server import LocalShowdownServer, find_free_port, server_answers


def _listening_addresses(port):
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    return {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.split()[3].endswith(f":{port}")}


def test_session_server_binds_loopback_only(showdown_server):
    assert showdown_server.is_running()
    assert _listening_addresses(showdown_server.port) == {"127.0.0.1"}


def test_start_twice_is_harmless_and_stop_cleans_up(tmp_path, capsys):
    server = LocalShowdownServer(run_dir=tmp_path)
    server.start(timeout=120, detach=True)
    try:
        again = LocalShowdownServer(port=server.port, run_dir=tmp_path)
        again.start()  # already running: says so, starts nothing
        assert "already running" in capsys.readouterr().out
    finally:
        assert LocalShowdownServer(port=server.port, run_dir=tmp_path).stop()
    assert not server_answers(server.port, timeout=0.5)
    assert not server.pid_file.exists()


def test_port_taken_by_another_program(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(ServerError, match=f"Port {port} .*already in use"):
            LocalShowdownServer(port=port, run_dir=tmp_path).start()


def test_missing_node_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ServerError, match="Node.js is not installed"):
        LocalShowdownServer(run_dir=tmp_path).start()


def test_missing_install_is_a_clear_error(tmp_path):
    (tmp_path / "config.js").write_text("")
    with pytest.raises(ServerError, match="not installed .*make server-install"):
        LocalShowdownServer(root=tmp_path, run_dir=tmp_path).start()


def test_cli_start_status_stop(tmp_path):
    port = str(find_free_port())

    def run(*a):
        return subprocess.run([sys.executable, "-m", "metamon.server", *a, "--port", port],
                              capture_output=True, text=True, timeout=120)

    started = run("start")
    try:
        assert started.returncode == 0, started.stderr
        assert "ready at http://127.0.0.1:" + port in started.stdout
        assert run("start").stdout.startswith("Showdown server already running")
        status = run("status")
        assert status.returncode == 0 and "running at" in status.stdout and "pid" in status.stdout
    finally:
        stopped = run("stop")
    assert stopped.returncode == 0 and "Stopped" in stopped.stdout
    status = run("status")
    assert status.returncode == 1 and "not running" in status.stdout
