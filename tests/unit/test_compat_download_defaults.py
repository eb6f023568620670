"""metamon's ``python -m metamon.data.download parsed-replays`` without ``--formats``: every
supported format at metamon's default dataset version (no network: the download is faked)."""

import inspect
import json

import pytest

import metamon.data.download as download
from metamon import SUPPORTED_BATTLE_FORMATS
from metamon.hub import LATEST_PARSED_REPLAY_VERSION, LATEST_TEAMS_VERSION

METAMON_FORMATS = [  # metamon 1.4's SUPPORTED_BATTLE_FORMATS, in its order
    "gen1ou", "gen1uu", "gen1nu", "gen1ubers", "gen2ou", "gen2uu", "gen2nu", "gen2ubers",
    "gen3ou", "gen3uu", "gen3nu", "gen3ubers", "gen4ou", "gen4uu", "gen4nu", "gen4ubers", "gen9ou",
]


@pytest.fixture
def fake_downloads(monkeypatch, tmp_path):
    calls = []

    def parsed(battle_format, version, force_download=False):
        calls.append(("parsed-replays", battle_format, version, force_download))
        return tmp_path / battle_format

    def teams(battle_format, set_name, version, force_download=False):
        calls.append(("teams", f"{set_name}/{battle_format}", version, force_download))
        return tmp_path / set_name / battle_format

    monkeypatch.setattr(download, "download_parsed_replays", parsed)
    monkeypatch.setattr(download, "download_teams", teams)
    return calls


def test_metamons_default_versions():
    assert LATEST_PARSED_REPLAY_VERSION == "v4" and LATEST_TEAMS_VERSION == "v4"
    signature = inspect.signature(download.download_parsed_replays)
    assert signature.parameters["version"].default == "v4"
    assert SUPPORTED_BATTLE_FORMATS == METAMON_FORMATS


def test_parsed_replays_without_formats_downloads_every_format(fake_downloads, capsys):
    assert download.main(["parsed-replays"]) == 0
    assert fake_downloads == [("parsed-replays", f, "v4", False) for f in METAMON_FORMATS]
    out = capsys.readouterr().out
    assert out.count("parsed replays ") == 17 and "gen9ou (v4)" in out


def test_formats_and_version_still_narrow_it(fake_downloads):
    assert download.main(["parsed-replays", "--formats", "gen2ou", "--version", "v3", "--force"]) == 0
    assert fake_downloads == [("parsed-replays", "gen2ou", "v3", True)]


def test_teams_without_formats_covers_every_format(fake_downloads):
    assert download.main(["teams"]) == 0
    assert {name.split("/")[1] for _, name, _, _ in fake_downloads} == set(METAMON_FORMATS)
    assert {version for _, _, version, _ in fake_downloads} == {"v4"}


def test_a_bad_format_is_refused_before_anything_downloads(fake_downloads, capsys):
    assert download.main(["parsed-replays", "--formats", "gen1ou", "gen1oo"]) == 2
    assert fake_downloads == [] and "gen1oo" in capsys.readouterr().err


def test_check_versions_prints_the_version_record(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path))
    assert download.main(["check-versions"]) == 0
    assert json.loads(capsys.readouterr().out) == {}
    record = {"parsed-replays": {"gen1ou": "version v4, downloaded 2026-01-31T12:00:00+00:00"}}
    (tmp_path / "version_reference.json").write_text(json.dumps(record))
    assert download.main(["check-versions"]) == 0
    assert json.loads(capsys.readouterr().out) == record
