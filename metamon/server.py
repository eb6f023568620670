"""Install, start, stop and find a local Pokémon Showdown server.

The server is the npm package ``pokemon-showdown`` pinned in ``package.json`` /
``package-lock.json``, which ship inside this package (``metamon/server_files/``, together with
our ``config.js``). It listens on 127.0.0.1 only, with no throttling, no guest security, no IP
checks and no REPL sockets: the shipped ``config.js``, which every start hands to Node with
``--require`` (Showdown then reads it instead of its own ``config/config.js``; see the file's
header). Nothing is written into the installed server, so any number of servers can start at
once from one install and every one of them uses our settings.

Where the server is installed (:func:`server_dir`, the folder holding ``node_modules/``):

1. ``$METAMON_SERVER_DIR`` if set;
2. else, in a source checkout (editable install), the repository's ``server/`` folder, filled by
   ``make server-install``;
3. else (a wheel install) a user cache folder, ``$XDG_CACHE_HOME/metamon-gemma/showdown-<version>``
   (``~/.cache/...`` by default).

``python -m metamon.server install`` (what ``make server-install`` runs for ``server/``) copies
the shipped ``package.json`` and ``package-lock.json`` there and runs ``npm ci`` in it.

Python::

    from metamon.server import LocalShowdownServer
    with LocalShowdownServer() as server:          # a free port, stopped on exit
        player = RandomPlayer(server_configuration=server.server_configuration)

Command line (what ``make server-install`` / ``make server`` / ``make server-stop`` /
``make server-status`` run; every command takes ``--dir DIR``, default :func:`server_dir`)::

    python -m metamon.server install [--force]
    python -m metamon.server start [--port 8000] [--simulators 1] [--log_challenges]
    python -m metamon.server status [--port 8000]
    python -m metamon.server stop [--port 8000]

``start`` is idempotent: when our server already answers on the port it says so and exits 0.
Each detached server keeps ``<server_dir>/run/showdown-<port>.pid`` and ``.../showdown-<port>.log``.
The pid file records the process id, the port and the process's start time; ``stop`` signals a
process group only while that process is still our server on that port (same start time, a
``pokemon-showdown start ... <port>`` command line). A pid file whose process is gone, or whose
pid now belongs to another program, is stale and removed.

``status`` tells a refused connection (nothing listens: "not running", exit 1) from a slow one (a
server busy under load: it is retried with longer waits, up to ``--timeout`` seconds, and
reported as running). :func:`probe_server` gives the same distinction to Python callers, and
:func:`check_server` waits for a slow server before giving up.
"""

from __future__ import annotations

import argparse
import errno
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from metamon.errors import ServerError
from metamon.files import atomic_write

__all__ = [
    "DEFAULT_PORT",
    "SERVER_FILES_DIR",
    "SHOWDOWN_VERSION",
    "LocalShowdownServer",
    "install_hint",
    "install_server",
    "server_dir",
    "showdown_dir",
    "check_port",
    "find_free_port",
    "unique_username",
    "port_in_use",
    "server_answers",
    "probe_server",
    "wait_for_answer",
    "check_server",
    "parse_server_url",
    "server_configuration",
]

DEFAULT_PORT = 8000
MAX_PORT = 65535
SHOWDOWN_VERSION = "0.11.11"  # must match SERVER_FILES_DIR / "package.json"
# config.js, package.json and package-lock.json of our server, shipped as package data (pip
# installs packages unpacked, so this is a real folder).
SERVER_FILES_DIR = Path(str(files("metamon").joinpath("server_files")))
_NPM_MANIFESTS = ("package.json", "package-lock.json")
_INSTALLED_MARKER = Path("node_modules") / ".installed"
_RUNTIME_DIRS = ("logs/repl", "logs/chat", "logs/modlog", "config/chat-plugins", "config/ladders")
_CHECKOUT_ROOT = Path(__file__).resolve().parents[1]
# What probe_server reports.
ANSWERS, REFUSED, SLOW, UNREACHABLE = "answers", "refused", "slow", "unreachable"


def server_dir() -> Path:
    """The folder where our server is (or will be) installed: it holds ``node_modules/``.

    ``$METAMON_SERVER_DIR`` if set; else ``server/`` of the source checkout this package runs
    from (recognised by its ``pyproject.toml``); else the user cache folder
    ``$XDG_CACHE_HOME/metamon-gemma/showdown-<SHOWDOWN_VERSION>`` (``~/.cache`` when
    ``XDG_CACHE_HOME`` is unset). Read at call time; nothing is created.
    """
    env = os.environ.get("METAMON_SERVER_DIR")
    if env:
        return Path(env).expanduser()
    if (_CHECKOUT_ROOT / "pyproject.toml").is_file():
        return _CHECKOUT_ROOT / "server"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
    return cache / "metamon-gemma" / f"showdown-{SHOWDOWN_VERSION}"


def showdown_dir(root: Optional[Path] = None) -> Path:
    """The installed ``pokemon-showdown`` package under ``root`` (default :func:`server_dir`)."""
    return (root or server_dir()) / "node_modules" / "pokemon-showdown"


def install_hint(root: Optional[Path] = None) -> str:
    """What to run to install the server into ``root`` (default :func:`server_dir`)."""
    root = Path(root) if root else server_dir()
    return f"run `make server-install` (in a source checkout) or `python -m metamon.server install --dir {root}`"


def _installed_from_shipped_lock(root: Path) -> bool:
    """True when ``root/node_modules`` holds the tree the shipped lockfile pins: npm's record of
    what it installed (``node_modules/.package-lock.json``) lists ``pokemon-showdown`` and only
    packages at the versions of the shipped ``package-lock.json`` (npm leaves out the optional
    packages of other platforms, so a subset is expected)."""
    try:
        installed = json.loads((root / "node_modules" / ".package-lock.json").read_text())["packages"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    pinned = json.loads((SERVER_FILES_DIR / "package-lock.json").read_text())["packages"]
    return "node_modules/pokemon-showdown" in installed and all(
        isinstance(entry, dict) and pinned.get(path, {}).get("version") == entry.get("version")
        for path, entry in installed.items()
    )


def install_server(root: Optional[Path] = None, force: bool = False) -> Path:
    """Install the pinned server into ``root`` (default :func:`server_dir`) and return ``root``.

    Copies the shipped ``package.json`` and ``package-lock.json`` into ``root`` and runs
    ``npm ci --ignore-scripts`` there (the optional SQLite modules are not needed), then marks
    the install with ``node_modules/.installed``. When that marker exists and the installed tree
    is the one the shipped lockfile pins, npm is not run (the manifests are copied and the
    marker touched) unless ``force``. Raises :class:`ServerError` when ``npm`` is missing or
    fails.
    """
    root = Path(root) if root else server_dir()
    marker = root / _INSTALLED_MARKER
    if not force and marker.is_file() and _installed_from_shipped_lock(root):
        for name in _NPM_MANIFESTS:
            shutil.copyfile(SERVER_FILES_DIR / name, root / name)
        marker.touch()
        return root
    if shutil.which("npm") is None:
        raise ServerError(
            "Installing the Showdown server needs Node.js >= 20 and npm, but there is no `npm` on "
            "PATH; install Node.js, then run `python -m metamon.server install` again."
        )
    root.mkdir(parents=True, exist_ok=True)
    for name in _NPM_MANIFESTS:
        shutil.copyfile(SERVER_FILES_DIR / name, root / name)
    cmd = ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ServerError(
            f"`{' '.join(cmd)}` in {root} failed with exit code {proc.returncode}:\n"
            f"{(proc.stderr or proc.stdout).strip()[-2000:]}"
        )
    marker.touch()
    return root


def unique_username(prefix: str = "MM", rng: Optional[random.Random] = None) -> str:
    """A Showdown username (at most 18 characters, Showdown's limit): the ASCII letters and
    digits of ``prefix`` cut to 8, then 10 random digits, e.g. ``"EmeraldK4821937765"``."""
    rng = rng or random
    clean = "".join(c for c in prefix if c.isascii() and c.isalnum())[:8] or "player"
    return clean + "".join(rng.choice("0123456789") for _ in range(10))


def check_port(port, hint: str = "choose another with --port") -> int:
    """``port`` if it is a TCP port number (an int in 1-65535), else :class:`ServerError` saying
    it is out of range, followed by ``hint``."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= MAX_PORT:
        raise ServerError(f"port {port} is out of range (1-{MAX_PORT}); {hint}")
    return port


def _bind_error(error: OSError, port: int, host: str) -> ServerError:
    """What a failed ``bind((host, port))`` means, other than "in use", as a one-line error."""
    if isinstance(error, socket.gaierror):
        reason = f"host {host!r} cannot be resolved ({error.strerror or error}); use e.g. --host 127.0.0.1"
    elif error.errno in (errno.EACCES, errno.EPERM):
        reason = ("permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE); "
                  "choose a port >= 1024 with --port")
    elif error.errno == errno.EADDRNOTAVAIL:
        reason = f"{error.strerror}: {host} is not an address of this machine; use e.g. --host 127.0.0.1"
    else:
        reason = error.strerror or str(error)
    return ServerError(f"Cannot listen on {f'{host}:{port}' if port else host}: {reason}")


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the OS picks it); :class:`ServerError` when
    no socket can be bound on ``host`` (an unknown host, an address of another machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, 0))
        except OSError as error:
            raise _bind_error(error, 0, host) from None
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when another program holds ``port`` on ``host``. Any other reason the port cannot be
    bound (out of range, permission denied, a host that is not on this machine) raises
    :class:`ServerError` saying which."""
    check_port(port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise _bind_error(error, port, host) from None
    return False


def probe_server(port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> str:
    """One HTTP request to ``host:port``: :data:`ANSWERS` (any status below 500), :data:`REFUSED`
    (nothing listens there), :data:`SLOW` (the connection was accepted but no answer came within
    ``timeout`` seconds: a busy server), or :data:`UNREACHABLE` (anything else: no route, a
    connect time-out, a reset, a server error)."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        try:
            connection.connect()
        except ConnectionRefusedError:
            return REFUSED
        except (OSError, ValueError):
            return UNREACHABLE
        try:
            connection.request("GET", "/")
            return ANSWERS if connection.getresponse().status < 500 else UNREACHABLE
        except TimeoutError:
            return SLOW
        except (OSError, http.client.HTTPException):
            return UNREACHABLE
    finally:
        connection.close()


def wait_for_answer(port: int, host: str = "127.0.0.1", patience: float = 30.0, first_timeout: float = 2.0) -> str:
    """:func:`probe_server` until the server answers or refuses, giving a slow one up to
    ``patience`` seconds in all (each try waits twice as long as the one before, from
    ``first_timeout``). Returns the last probe's result."""
    deadline = time.monotonic() + patience
    timeout = first_timeout
    while True:
        state = probe_server(port, host, timeout=max(0.1, min(timeout, deadline - time.monotonic())))
        if state != SLOW or time.monotonic() >= deadline - 0.05:
            return state
        timeout *= 2


def server_answers(port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> bool:
    """True when a Showdown server answers HTTP on ``host:port`` within ``timeout`` seconds (any
    HTTP status below 500 counts)."""
    return probe_server(port, host, timeout) == ANSWERS


def parse_server_url(url_or_port) -> tuple[str, int]:
    """Accepts ``8000``, ``"8000"``, ``"127.0.0.1:8000"``, ``"http://localhost:8000"`` or a
    websocket URL such as ``"ws://127.0.0.1:8000/showdown/websocket"``; returns (host, port)."""
    hint = f"in server URL {url_or_port!r}"
    if isinstance(url_or_port, int):
        return "127.0.0.1", check_port(url_or_port, hint)
    text = str(url_or_port).strip()
    if text.isdigit():
        return "127.0.0.1", check_port(int(text), hint)
    if "://" not in text:
        text = "http://" + text
    parsed = urlparse(text)
    try:
        port = parsed.port
    except ValueError:  # out of range or not a number: say which
        written = parsed.netloc.rpartition(":")[2]
        if written.lstrip("-").isdigit():
            check_port(int(written), hint)
        port = None
    if port is not None:
        check_port(port, hint)
    if not parsed.hostname or port is None:
        raise ServerError(
            f"Cannot read a host and port from server URL {url_or_port!r}; "
            "use e.g. 8000, 127.0.0.1:8000 or ws://127.0.0.1:8000/showdown/websocket"
        )
    return parsed.hostname, port


def server_configuration(url_or_port=DEFAULT_PORT):
    """poke-env ``ServerConfiguration`` for a local server (no authentication URL: local logins
    are passwordless, so poke-env never contacts a login server)."""
    # lazy: keeps the server CLI and this bottom-floor module free of the poke-env client
    from poke_env.ps_client.server_configuration import ServerConfiguration

    host, port = parse_server_url(url_or_port)
    return ServerConfiguration(f"ws://{host}:{port}/showdown/websocket", "")


def check_server(url_or_port=DEFAULT_PORT, timeout: float = 3.0, patience: float = 30.0) -> tuple[str, int]:
    """Raise :class:`ServerError` unless a Showdown server answers at ``url_or_port``.

    A refused or unreachable address fails after one try of ``timeout`` seconds; a server that
    accepts the connection but is slow to answer (busy) is given up to ``patience`` seconds."""
    host, port = parse_server_url(url_or_port)
    state = wait_for_answer(port, host, patience=max(patience, timeout), first_timeout=timeout)
    if state == SLOW:
        raise ServerError(
            f"The server at {host}:{port} accepts connections but did not answer within "
            f"{max(patience, timeout):.0f} s; is it overloaded or stuck? Check it with "
            f"`python -m metamon.server status --port {port}`."
        )
    if state != ANSWERS:
        raise ServerError(
            f"No Pokémon Showdown server answers at {host}:{port} (connection {state}). Start one with "
            f"`make server` or `python -m metamon.server start --port {port}`, or pass the right --server_url."
        )
    return host, port


def _pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists and has not exited (a zombie, exited but not yet
    reaped by its parent, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): os.kill said it exists


def _ps_field(pid: int, field: str) -> Optional[str]:
    """``ps -o <field>= -p <pid>`` (systems without ``/proc``); None when the process is gone."""
    try:
        out = subprocess.run(["ps", "-o", f"{field}=", "-p", str(pid)], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _process_start_time(pid: int) -> Optional[str]:
    """When process ``pid`` started, as the OS records it (Linux: field 22 of
    ``/proc/<pid>/stat``, clock ticks since boot; elsewhere ``ps -o lstart``); None when gone.
    A pid reused by a later process has another start time."""
    proc = Path("/proc")
    if proc.is_dir():
        try:
            return (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            return None
    return _ps_field(pid, "lstart")


def _process_command(pid: int, settle_s: float = 1.0) -> Optional[str]:
    """Process ``pid``'s command line (arguments joined by spaces); None when gone.

    Linux shows an empty command line for a few milliseconds while a process is being started
    (``exec`` in progress): an empty one is read again for up to ``settle_s`` seconds."""
    proc = Path("/proc")
    if not proc.is_dir():
        return _ps_field(pid, "command")
    deadline = time.monotonic() + settle_s
    while True:
        try:
            command = (proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            return None
        if command or time.monotonic() >= deadline:
            return command
        time.sleep(0.01)


def _is_showdown_on(pid: int, port: int) -> bool:
    """True when ``pid`` runs ``pokemon-showdown start ... <port>`` (our server's command)."""
    command = _process_command(pid)
    if not command:
        return False
    words = command.split()
    return "pokemon-showdown" in command and "start" in words and str(port) in words


class LocalShowdownServer:
    """One local Showdown server process on ``host:port``.

    Args:
        port: TCP port; ``None`` picks a free one.
        host: listen address; keep the default 127.0.0.1 unless you mean to expose the server.
        simulators: simulator child processes (1 is best on 2 cores; 2 helps on more).
        log_challenges: write Showdown's per-battle JSON logs under the package's ``logs/``.
        root: the folder the server is installed in (default :func:`server_dir`).
        run_dir: where pid and log files go (default ``<root>/run``).
    """

    def __init__(
        self,
        port: Optional[int] = None,
        host: str = "127.0.0.1",
        simulators: int = 1,
        log_challenges: bool = False,
        root: Optional[Path] = None,
        run_dir: Optional[Path] = None,
    ):
        self.root = Path(root) if root else server_dir()
        self.host = host
        self.port = check_port(port) if port is not None else find_free_port(host)
        self.simulators = simulators
        self.log_challenges = log_challenges
        self.run_dir = Path(run_dir) if run_dir else self.root / "run"
        self._proc: Optional[subprocess.Popen] = None

    # -- locations -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def websocket_url(self) -> str:
        return f"ws://{self.host}:{self.port}/showdown/websocket"

    @property
    def server_configuration(self):
        return server_configuration(f"{self.host}:{self.port}")

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"showdown-{self.port}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"showdown-{self.port}.log"

    def _write_pid_file(self, pid: int) -> None:
        record = {"pid": pid, "port": self.port, "started": _process_start_time(pid)}
        atomic_write(self.pid_file, json.dumps(record) + "\n")

    def _recorded_pid(self) -> Optional[int]:
        """The pid in the pid file while that process is still our server on this port (same
        start time when recorded, our command line); otherwise the pid file is stale: it is
        removed and None returned. Old pid files holding only a number are checked by command."""
        try:
            text = self.pid_file.read_text().strip()
        except OSError:
            return None
        try:
            record = json.loads(text)
            if isinstance(record, int):
                record = {"pid": record}
            pid, started = int(record["pid"]), record.get("started")
        except (ValueError, TypeError, KeyError, AttributeError):
            pid, started = None, None
        if (
            pid is not None and pid > 0 and _pid_alive(pid) and _is_showdown_on(pid, self.port)
            and (started is None or started == _process_start_time(pid))
        ):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    # -- life cycle ------------------------------------------------------------------------
    def is_running(self, patience: float = 0.0) -> bool:
        """True when a server answers on the port; a busy one (slow to answer) counts as running
        when it answers within ``patience`` seconds (0: one try of 2 s)."""
        if patience <= 0:
            return server_answers(self.port, self.host)
        return wait_for_answer(self.port, self.host, patience=patience) == ANSWERS

    def _check_installation(self) -> Path:
        if shutil.which("node") is None:
            raise ServerError(
                "Node.js is not installed (no `node` on PATH); install Node >= 20 and npm, "
                f"then {install_hint(self.root)}."
            )
        package = showdown_dir(self.root)
        if not (package / "pokemon-showdown").exists() or not (package / "dist").is_dir():
            raise ServerError(
                f"Pokémon Showdown is not installed in {package}; {install_hint(self.root)}."
            )
        return package

    def start(self, timeout: float = 60.0, detach: bool = False) -> "LocalShowdownServer":
        """Start the server and wait until it answers HTTP.

        ``detach=True`` leaves it running after this Python process exits (``make server``);
        otherwise :meth:`stop` (or the context manager) ends it.
        """
        pid = self._recorded_pid()
        if pid and wait_for_answer(self.port, self.host, patience=min(timeout, 30.0)) in (ANSWERS, SLOW):
            print(f"Showdown server already running at {self.url} (pid {pid})")
            return self
        package = self._check_installation()
        if port_in_use(self.port, self.host):
            raise ServerError(
                f"Port {self.port} on {self.host} is already in use by another program; "
                "choose another with --port (or stop what uses it)."
            )
        for d in _RUNTIME_DIRS:
            (package / d).mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)

        env = dict(os.environ)
        env.pop("PORT", None)  # cloud-env would override our port
        env.update(
            METAMON_BIND_ADDRESS=self.host,
            METAMON_SIMULATORS=str(self.simulators),
            METAMON_LOG_CHALLENGES="1" if self.log_challenges else "0",
            BIND_IP=self.host,
        )
        # --require: Node preloads our config.js, which makes Showdown read it instead of its
        # own config/config.js (see that file's header); forked children inherit the flag.
        config = str(SERVER_FILES_DIR / "config.js")
        cmd = ["node", "--require", config, "pokemon-showdown", "start", "--skip-build", "--no-security",
               str(self.port)]
        log = open(self.log_file, "ab")
        self._proc = subprocess.Popen(
            cmd, cwd=package, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        self._write_pid_file(self._proc.pid)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServerError(
                    f"Showdown server on port {self.port} exited with code {self._proc.returncode}"
                    f" during start-up; see {self.log_file}:\n{self._log_tail()}"
                )
            if self.is_running():
                if detach:
                    self._proc = None  # not ours to stop any more
                return self
            time.sleep(0.2)
        self.stop()
        raise ServerError(
            f"Showdown server on port {self.port} did not answer within {timeout:.0f} s; "
            f"see {self.log_file}:\n{self._log_tail()}"
        )

    def _log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM the server's process group and wait for it; True if something was stopped.

        A server started by another process is found through the pid file and signalled only
        while that pid is still our server on this port; a stale pid file is removed."""
        pid = self._proc.pid if self._proc is not None else self._recorded_pid()
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None:
                if self._proc.poll() is not None:
                    break
            elif not _pid_alive(pid):
                break
            time.sleep(0.1)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._proc is not None:
            self._proc.wait(timeout=5)
            self._proc = None
        self.pid_file.unlink(missing_ok=True)
        return True

    def __enter__(self) -> "LocalShowdownServer":
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m metamon.server", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["install", "start", "stop", "status"])
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the server is installed (default: see metamon.server.server_dir)")
    parser.add_argument("--force", action="store_true", help="install: run npm ci even if installed")
    parser.add_argument("--port", type=int, default=int(os.environ.get("METAMON_SERVER_PORT", DEFAULT_PORT)))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--simulators", type=int, default=1)
    parser.add_argument("--log_challenges", action="store_true")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="start: seconds to wait for the server to answer; status: how long a busy server may take")
    args = parser.parse_args(argv)
    try:
        server = LocalShowdownServer(args.port, args.host, args.simulators, args.log_challenges, root=args.dir)
        if args.command == "install":
            root = install_server(args.dir, force=args.force)
            print(f"Showdown server {SHOWDOWN_VERSION} installed in {root}")
        elif args.command == "start":
            server.start(timeout=args.timeout, detach=True)
            print(f"Showdown server ready at {server.url} (log: {server.log_file})")
        elif args.command == "stop":
            print(f"Stopped the server on port {args.port}" if server.stop() else
                  f"No server started by metamon is running on port {args.port}")
        else:
            pid = server._recorded_pid()
            owner = f" (pid {pid})" if pid else " (not started by metamon)"
            state = wait_for_answer(args.port, args.host, patience=args.timeout)
            if state == ANSWERS:
                print(f"running at {server.url}{owner}")
            elif state == SLOW:
                print(f"running at {server.url}{owner}, but busy: it accepted the connection and did not "
                      f"answer within {args.timeout:.0f} s")
            else:
                print(f"not running on port {args.port}" + ("" if state == REFUSED else f" ({state} at {args.host})"))
                return 1
    except ServerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a folder that cannot be made or written (pid, log, runtime files)
        print(f"error: {e.strerror}: {e.filename}" if e.strerror and e.filename else f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main())
