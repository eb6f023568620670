"""Port and OS errors of ``metamon.server`` are one-line ``ServerError``s (exit code 2 from
``python -m metamon.server``) that say what is wrong: out of range, in use, permission denied.

No server is started: the installation check is skipped where a test reaches ``start()``.
"""

import errno
import socket

import pytest

from metamon import server
from metamon.errors import ServerError
from metamon.server import LocalShowdownServer, check_server, find_free_port, parse_server_url, port_in_use


@pytest.fixture
def installed(monkeypatch, tmp_path):
    """Pretend the server is installed in tmp_path (start() fails before launching node)."""
    monkeypatch.setattr(LocalShowdownServer, "_check_installation", lambda self: tmp_path)


def _cli(capsys, *argv):
    code = server._main(list(argv))
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("port", [70000, 65536, -1])
def test_out_of_range_ports_are_refused_naming_the_range(port):
    with pytest.raises(ServerError, match=rf"port {port} is out of range \(1-65535\)"):
        LocalShowdownServer(port=port)
    with pytest.raises(ServerError, match=rf"port {port} is out of range"):
        parse_server_url(f"127.0.0.1:{port}")
    with pytest.raises(ServerError, match=r"out of range"):
        check_server(str(port) if port > 0 else f"localhost:{port}")


@pytest.mark.parametrize("command", ["start", "status", "stop"])
def test_cli_out_of_range_port_is_a_one_line_error(capsys, command):
    code, err = _cli(capsys, command, "--port", "70000")
    assert code == 2
    assert err.strip().splitlines() == ["error: port 70000 is out of range (1-65535); choose another with --port"]


def test_port_bound_by_another_socket_is_reported_in_use(installed, capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert port_in_use(port)
        with pytest.raises(ServerError, match=rf"Port {port} on 127\.0\.0\.1 is already in use"):
            LocalShowdownServer(port=port).start()
        code, err = _cli(capsys, "start", "--port", str(port))
    assert code == 2 and "already in use" in err and len(err.strip().splitlines()) == 1


class _RefusingSocket(socket.socket):
    """A socket whose bind fails the way a port < 1024 does for a normal user (or as a host
    address that is not on this machine), whatever the user running the tests."""

    error = PermissionError(errno.EACCES, "Permission denied")

    def bind(self, address):
        raise self.error


@pytest.mark.parametrize("error, message", [
    (PermissionError(errno.EACCES, "Permission denied"), r"permission denied.*ports below 1024"),
    (OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"),
     r"Cannot assign requested address.*not an address of this machine"),
])
def test_other_bind_failures_say_what_is_wrong_not_in_use(installed, monkeypatch, capsys, error, message):
    monkeypatch.setattr(_RefusingSocket, "error", error)
    monkeypatch.setattr(server.socket, "socket", _RefusingSocket)
    with pytest.raises(ServerError, match=message) as raised:
        port_in_use(80)
    assert "in use" not in str(raised.value)
    with pytest.raises(ServerError, match=message):
        LocalShowdownServer(port=80).start()
    code, err = _cli(capsys, "start", "--port", "80")
    assert code == 2 and "in use" not in err and len(err.strip().splitlines()) == 1


def test_a_host_that_does_not_resolve_is_a_server_error():
    with pytest.raises(ServerError, match=r"no\.such\.host\.invalid"):
        find_free_port("no.such.host.invalid")
    with pytest.raises(ServerError, match=r"no\.such\.host\.invalid"):
        LocalShowdownServer(host="no.such.host.invalid")


def test_cli_os_errors_are_one_line(installed, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    port = str(find_free_port())
    code, err = _cli(capsys, "start", "--port", port, "--dir", str(afile))
    # the run folder for pid and log files would be under a file
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "afile" in err
    assert "Traceback" not in err
