"""`server status` / `stop` without Node (issue 15, items 8 and 10): a busy server is running, not
"not running"; a refused port is told from a slow one; `stop` never signals a process that is not
our server any more, and stale pid files are removed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from metamon.errors import ServerError
from metamon.server import (
    ANSWERS,
    REFUSED,
    SLOW,
    LocalShowdownServer,
    _main,
    _process_start_time,
    check_server,
    find_free_port,
    probe_server,
)


class SlowHTTPServer:
    """Accepts connections on a free port and answers ``HTTP 200`` after ``delay`` seconds
    (``None``: never), like a Showdown server under heavy load."""

    def __init__(self, delay):
        self.delay = delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            conn.recv(4096)
            if self.delay is None:
                self.closed.wait()
                return
            time.sleep(self.delay)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def close(self):
        self.closed.set()
        self.sock.close()


@pytest.fixture
def slow_server(request):
    server = SlowHTTPServer(request.param)
    yield server
    server.close()


def _status(port, root, *extra):
    return _main(["status", "--port", str(port), "--dir", str(root), *extra])


@pytest.mark.parametrize("slow_server", [3.0], indirect=True)
def test_status_waits_for_a_busy_server(slow_server, tmp_path, capsys):
    assert _status(slow_server.port, tmp_path) == 0
    assert f"running at http://127.0.0.1:{slow_server.port} (not started by metamon)" in capsys.readouterr().out
    check_server(slow_server.port)  # the CLIs' up-front check waits for it too


@pytest.mark.parametrize("slow_server", [None], indirect=True)
def test_a_server_that_never_answers_is_busy_not_gone(slow_server, tmp_path, capsys):
    start = time.monotonic()
    assert probe_server(slow_server.port, timeout=0.5) == SLOW
    assert _status(slow_server.port, tmp_path, "--timeout", "3") == 0
    assert "but busy: it accepted the connection and did not answer within 3 s" in capsys.readouterr().out
    assert time.monotonic() - start < 15
    with pytest.raises(ServerError, match="accepts connections but did not answer within 2 s"):
        check_server(slow_server.port, timeout=0.5, patience=2)


def test_a_refused_port_is_not_running_at_once(tmp_path, capsys):
    port = find_free_port()
    start = time.monotonic()
    assert probe_server(port) == REFUSED
    assert _status(port, tmp_path) == 1
    assert capsys.readouterr().out.strip() == f"not running on port {port}"
    with pytest.raises(ServerError, match=r"No Pokémon Showdown server answers .*connection refused"):
        check_server(port, timeout=0.5)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("slow_server", [0.0], indirect=True)
def test_probe_answers(slow_server):
    assert probe_server(slow_server.port) == ANSWERS


def _process(*argv):
    """A process whose command line is ``python -c <sleep> *argv``, in its own process group."""
    code = "import time; time.sleep(120)"
    return subprocess.Popen([sys.executable, "-c", code, *argv], start_new_session=True)


def test_stop_leaves_a_reused_pid_alone_and_removes_the_stale_pid_file(tmp_path):
    port = find_free_port()
    server = LocalShowdownServer(port=port, run_dir=tmp_path)
    other = _process()  # the recorded pid now belongs to another program
    try:
        server.pid_file.write_text(str(other.pid))  # the format older versions wrote
        assert server.stop() is False
        assert other.poll() is None, "stop signalled a process that is not our server"
        assert not server.pid_file.exists()
    finally:
        other.kill()
        other.wait()


def test_stop_checks_the_recorded_start_time(tmp_path):
    port = find_free_port()
    server = LocalShowdownServer(port=port, run_dir=tmp_path)
    lookalike = _process("pokemon-showdown", "start", str(port))  # our command line, pid reused
    try:
        server.pid_file.write_text(json.dumps({"pid": lookalike.pid, "port": port, "started": "1"}))
        assert server.stop() is False and lookalike.poll() is None and not server.pid_file.exists()

        # The same process recorded with its real start time is ours: stop ends its group.
        server.pid_file.write_text(json.dumps({"pid": lookalike.pid, "port": port,
                                               "started": _process_start_time(lookalike.pid)}))
        assert server.stop(timeout=10) is True
        assert lookalike.wait(timeout=10) is not None and not server.pid_file.exists()
    finally:
        lookalike.kill()
        lookalike.wait()


def test_status_removes_a_stale_pid_file(tmp_path, capsys):
    port = find_free_port()
    gone = _process()
    gone.kill()
    gone.wait()
    pid_file = tmp_path / "run" / f"showdown-{port}.pid"
    pid_file.parent.mkdir()
    pid_file.write_text(json.dumps({"pid": gone.pid, "port": port, "started": "1"}))
    assert _status(port, tmp_path) == 1
    assert "not running" in capsys.readouterr().out and not pid_file.exists()
