import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from metamon.errors import ServerError
from metamon.server import (
    SERVER_FILES_DIR,
    LocalShowdownServer,
    find_free_port,
    server_answers,
    server_dir,
    showdown_dir,
)


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


# ---------------------------------------------------------------------------------------------
# Concurrent starts use our config (issue 15, item 8)
# ---------------------------------------------------------------------------------------------
def _private_install(shared_root: Path, root: Path) -> Path:
    """A copy of the installed server under ``root`` that no other test or process starts from:
    the package's files hard-linked (instant, no space), ``config/`` copied and ``logs/`` fresh
    (the server writes there), its dependencies linked beside it."""
    shared = showdown_dir(shared_root).resolve()
    modules = root / "node_modules"
    modules.mkdir(parents=True)
    for dep in shared.parent.iterdir():
        if dep.name != "pokemon-showdown":
            (modules / dep.name).symlink_to(dep.resolve())
    package = modules / "pokemon-showdown"
    subprocess.run(["cp", "-al", str(shared), str(package)], check=True)
    for folder in ("config", "logs"):
        shutil.rmtree(package / folder)
    shutil.copytree(shared / "config", package / "config", ignore=shutil.ignore_patterns("config.js"))
    for d in ("logs/repl", "logs/chat", "logs/modlog"):
        (package / d).mkdir(parents=True)
    return root


def _process_tree(psutil, pid: int):
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def test_concurrent_starts_bind_loopback_only_and_open_no_repl(tmp_path):
    """Four servers start at once from one install while its config/config.js is being rewritten
    in a tight loop (what every start used to do): each must use our config, i.e. listen on
    127.0.0.1 only and open no REPL socket."""
    psutil = pytest.importorskip("psutil")
    root = _private_install(server_dir(), tmp_path / "install")
    package = showdown_dir(root)
    stop_copying = threading.Event()

    def copy_loop():
        while not stop_copying.is_set():
            shutil.copyfile(SERVER_FILES_DIR / "config.js", package / "config" / "config.js")

    servers = [LocalShowdownServer(root=root, run_dir=tmp_path / "run") for _ in range(4)]
    errors = []

    def start(server):
        try:
            server.start(timeout=180)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(f"{server.port}: {error}")

    copier = threading.Thread(target=copy_loop, daemon=True)
    copier.start()
    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop_copying.set()
        copier.join()
        assert not errors, errors
        for server in servers:
            tree = _process_tree(psutil, server._proc.pid)
            listening = {(c.laddr.ip, c.laddr.port) for p in tree for c in p.net_connections(kind="inet")
                         if c.status == psutil.CONN_LISTEN}
            assert listening == {("127.0.0.1", server.port)}, (server.port, listening)
            unix = [c.laddr for p in tree for c in p.net_connections(kind="unix") if c.laddr]
            assert not any("repl" in path for path in unix), unix
        assert [p.name for p in (package / "logs" / "repl").iterdir()] == []
    finally:
        stop_copying.set()
        for server in servers:
            server.stop()
