"""Where the Showdown server is installed (metamon.server.server_dir) and how
(install_server / `python -m metamon.server install`), with a fake `npm`: no Node, no network."""

import json
import os
import stat
from pathlib import Path

import pytest

import metamon.server as server_module
from metamon.errors import ServerError
from metamon.server import SERVER_FILES_DIR, SHOWDOWN_VERSION, _main, install_server, server_dir

# A stand-in for npm: records its arguments and working folder, then creates what `npm ci` would,
# including npm's record of the installed tree (or fails with FAKE_NPM_FAIL set).
FAKE_NPM = """#!/bin/sh
echo "$PWD $*" >> "$FAKE_NPM_LOG"
if [ -n "$FAKE_NPM_FAIL" ]; then echo "npm ERR! lockfile mismatch" >&2; exit 1; fi
mkdir -p node_modules/pokemon-showdown
cp package-lock.json node_modules/.package-lock.json
"""


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM)
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "npm.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("FAKE_NPM_LOG", str(log))
    monkeypatch.delenv("FAKE_NPM_FAIL", raising=False)
    return lambda: log.read_text().splitlines() if log.exists() else []


def test_shipped_server_files_pin_the_showdown_version():
    assert sorted(p.name for p in SERVER_FILES_DIR.iterdir()) == ["config.js", "package-lock.json", "package.json"]
    package = json.loads((SERVER_FILES_DIR / "package.json").read_text())
    lock = json.loads((SERVER_FILES_DIR / "package-lock.json").read_text())
    assert package["dependencies"] == {"pokemon-showdown": SHOWDOWN_VERSION}
    assert lock["packages"]["node_modules/pokemon-showdown"]["version"] == SHOWDOWN_VERSION
    assert "exports.bindaddress = process.env.METAMON_BIND_ADDRESS || '127.0.0.1';" in (
        SERVER_FILES_DIR / "config.js").read_text()


def test_server_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("METAMON_SERVER_DIR", str(tmp_path / "mine"))
    assert server_dir() == tmp_path / "mine"

    monkeypatch.delenv("METAMON_SERVER_DIR")
    checkout = Path(server_module.__file__).resolve().parents[1]
    assert (checkout / "pyproject.toml").is_file()  # these tests run from a source checkout
    assert server_dir() == checkout / "server"

    # Installed from a wheel: site-packages holds no pyproject.toml -> the user cache folder.
    monkeypatch.setattr(server_module, "_CHECKOUT_ROOT", tmp_path / "site-packages")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert server_dir() == tmp_path / "cache" / "metamon-gemma" / f"showdown-{SHOWDOWN_VERSION}"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert server_dir() == Path("~/.cache").expanduser() / "metamon-gemma" / f"showdown-{SHOWDOWN_VERSION}"


def test_install_copies_the_manifests_runs_npm_ci_once(tmp_path, fake_npm):
    root = tmp_path / "srv"
    assert install_server(root) == root
    for name in ("package.json", "package-lock.json"):
        assert (root / name).read_bytes() == (SERVER_FILES_DIR / name).read_bytes()
    marker = root / "node_modules" / ".installed"
    assert marker.is_file()
    assert fake_npm() == [f"{root} ci --no-audit --no-fund --ignore-scripts --loglevel=error"]

    # Installed from the shipped lockfile: npm is not run again, even without the copied manifests
    # (a checkout installed before they moved into the package).
    (root / "package-lock.json").unlink()
    install_server(root)
    assert len(fake_npm()) == 1 and (root / "package-lock.json").is_file()
    install_server(root, force=True)
    assert len(fake_npm()) == 2

    # npm's record of the tree says another pokemon-showdown version: installed again.
    record = root / "node_modules" / ".package-lock.json"
    record.write_text(record.read_text().replace(f'"version": "{SHOWDOWN_VERSION}"', '"version": "0.11.10"'))
    install_server(root)
    assert len(fake_npm()) == 3
    marker.unlink()  # an interrupted install: installed again
    install_server(root)
    assert len(fake_npm()) == 4 and marker.is_file()


def test_install_errors_say_what_failed(tmp_path, fake_npm, monkeypatch):
    monkeypatch.setenv("FAKE_NPM_FAIL", "1")
    with pytest.raises(ServerError, match=r"npm ci .* failed with exit code 1:\nnpm ERR! lockfile mismatch"):
        install_server(tmp_path / "srv")
    assert not (tmp_path / "srv" / "node_modules" / ".installed").exists()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ServerError, match="no `npm` on PATH"):
        install_server(tmp_path / "other")


def test_cli_install_uses_the_server_dir(tmp_path, fake_npm, monkeypatch, capsys):
    monkeypatch.setenv("METAMON_SERVER_DIR", str(tmp_path / "env_dir"))
    assert _main(["install"]) == 0
    assert f"installed in {tmp_path / 'env_dir'}" in capsys.readouterr().out
    assert _main(["install", "--dir", str(tmp_path / "flag_dir")]) == 0
    assert [line.split()[0] for line in fake_npm()] == [str(tmp_path / "env_dir"), str(tmp_path / "flag_dir")]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert _main(["install", "--dir", str(tmp_path / "x")]) == 2
    assert "error: " in capsys.readouterr().err
