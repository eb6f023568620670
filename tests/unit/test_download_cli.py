"""`python -m metamon.data.download` and metamon.hub.download_parsed_replays, without network access."""

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import huggingface_hub

from metamon.data.download import main
from metamon.hub import (
    download_parsed_replays,
    extract_local_archive,
    get_active_dataset_versions,
    team_sets_for,
)

NAME = "gen1ou-1_1500_alice_vs_bob_01-02-2024_WIN.json.lz4"


def tarball(path: Path, members: dict) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def fake_hub(monkeypatch, archive: Path):
    calls = []

    def fake_download(**kwargs):
        calls.append(kwargs)
        target = Path(kwargs["local_dir"]) / kwargs["filename"]
        target.write_bytes(archive.read_bytes())
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    return calls


def test_cli_offline_is_a_clear_error_with_exit_code_2(tmp_path):
    env = {"METAMON_CACHE_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "metamon.data.download", "parsed-replays", "--formats", "gen1ou"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 2
    assert "Could not reach the Hugging Face Hub (HF_HUB_OFFLINE is set)" in proc.stderr
    assert "'gen1ou.tar.gz' at revision 'v4' of the Hub dataset 'jakegrigsby/metamon-parsed-replays'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "parsed-replays" / "gen1ou").exists()


def test_cli_unknown_format_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path))
    assert main(["teams", "--formats", "gen1oo"]) == 2
    assert "gen1oo" in capsys.readouterr().err


def test_cli_parsed_replays_downloads_and_extracts(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path / "cache"))
    archive = tarball(tmp_path / "gen1ou.tar.gz", {f"gen1ou/{NAME}": b"x"})
    calls = fake_hub(monkeypatch, archive)
    assert main(["parsed-replays", "--formats", "gen1ou", "--version", "v3"]) == 0
    dest = tmp_path / "cache" / "parsed-replays" / "gen1ou"
    assert [p.name for p in dest.iterdir()] == [NAME]
    assert (calls[0]["repo_id"], calls[0]["filename"], calls[0]["revision"], calls[0]["repo_type"]) == (
        "jakegrigsby/metamon-parsed-replays", "gen1ou.tar.gz", "v3", "dataset")
    assert get_active_dataset_versions()["parsed-replays"]["gen1ou"].startswith("version v3, downloaded ")
    assert f"parsed replays gen1ou (v3): {dest}" in capsys.readouterr().out
    # Installed: reused without asking the Hub again.
    assert download_parsed_replays("gen1ou") == dest and len(calls) == 1


def test_v1_parsed_replay_archives_hold_the_files_directly(tmp_path, monkeypatch):
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path / "cache"))
    fake_hub(monkeypatch, tarball(tmp_path / "a.tar.gz", {NAME: b"x"}))
    dest = download_parsed_replays("gen2ou", version="v1")
    assert [p.name for p in dest.iterdir()] == [NAME]


def test_local_archive_installs_parsed_replays_for_offline_use(tmp_path, monkeypatch):
    """The manual route the offline error suggests: extract_local_archive into the folder
    download_parsed_replays uses; afterwards it is found without the Hub (offline here)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("METAMON_CACHE_DIR", str(cache))
    archive = tarball(tmp_path / "gen1ou.tar.gz", {f"gen1ou/{NAME}": b"payload"})
    dest = cache / "parsed-replays" / "gen1ou"
    assert extract_local_archive(archive, dest, dataset_key="parsed-replays", name="gen1ou", version="v4") == dest
    assert (dest / NAME).read_bytes() == b"payload"
    assert download_parsed_replays("gen1ou") == dest
    assert get_active_dataset_versions()["parsed-replays"]["gen1ou"].startswith("version v4, downloaded ")
    assert [p.name for p in dest.parent.iterdir()] == ["gen1ou"]  # no temporary folders left


def test_team_sets_per_format():
    assert team_sets_for("gen1ou") == ["competitive", "paper_variety", "paper_replays", "modern_replays",
                                       "modern_replays_v2"]
    assert team_sets_for("gen1ou", "v0") == ["competitive", "paper_variety", "paper_replays"]
    assert team_sets_for("gen2uu") == ["competitive", "paper_variety"]
    assert team_sets_for("gen9ou") == ["competitive", "modern_replays", "modern_replays_v2"]
    assert team_sets_for("gen9uu") == ["competitive"]
