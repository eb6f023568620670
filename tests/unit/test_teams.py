"""Team sets (metamon.teams) and dataset downloads (metamon.hub), without a server.

The Hub is offline in tests (conftest sets HF_HUB_OFFLINE=1); archive extraction is exercised
with tarballs built here.
"""

import io
import json
import re
import tarfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import huggingface_hub
import pytest
from huggingface_hub.errors import EntryNotFoundError

from metamon.errors import MetamonError, ServerError, TeamError, UnknownNameError
from metamon.hub import (
    download_teams,
    extract_local_archive,
    get_active_dataset_versions,
)
from metamon.teams import (
    BUILTIN_TEAM_SETS,
    BUILTIN_TEAMS_DIR,
    METAMON_TEAM_SETS,
    TeamSet,
    builtin_team_formats,
    get_metamon_teams,
    pack_team_file,
    validate_teams,
)

BUILTIN_FORMATS = ["gen1ou", "gen2ou", "gen3ou", "gen4ou", "gen9ou"]
STAT_EXP = "EVs: 252 HP / 252 Atk / 252 Def / 252 SpA / 252 SpD / 252 Spe"

GARCHOMP = """Garchomp @ Rocky Helmet
Ability: Rough Skin
Tera Type: Water
EVs: 252 HP / 4 Def / 252 Spe
Jolly Nature
- Stealth Rock
- Earthquake
- Dragon Tail
- Spikes
"""
# poke-env keeps a bare species line as the nickname field (the server reads the species from it).
GARCHOMP_PACKED = (
    "Garchomp||rockyhelmet|roughskin|stealthrock,earthquake,dragontail,spikes|Jolly|"
    "252,,4,,,252|||||,,,,,Water"
)


def gen1_mon(species: str, moves=("Body Slam", "Hyper Beam", "Blizzard", "Earthquake")) -> str:
    return "\n".join([species, STAT_EXP] + [f"- {m}" for m in moves]) + "\n"


def write_team(path: Path, mons) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(mons))
    return path


@pytest.fixture
def three_team_dir(tmp_path):
    """Three gen1ou team files whose lead Pokémon tell them apart."""
    d = tmp_path / "three"
    for lead in ("Tauros", "Snorlax", "Chansey"):
        write_team(d / f"{lead.lower()}.gen1ou_team", [gen1_mon(lead)])
    return d


# ------------------------------------------------------------------------------------------
# Collecting files
# ------------------------------------------------------------------------------------------
def test_team_set_collects_matching_files_recursively(tmp_path):
    a = write_team(tmp_path / "a.gen1ou_team", [gen1_mon("Tauros")])
    b = write_team(tmp_path / "sub" / "deeper" / "b.gen1ou_team", [gen1_mon("Snorlax")])
    write_team(tmp_path / "c.gen2ou_team", [gen1_mon("Snorlax")])
    write_team(tmp_path / "d.gen1ou_team.txt", [gen1_mon("Snorlax")])
    (tmp_path / "e.gen1ou_team").mkdir()  # a folder, not a team file
    ts = TeamSet(tmp_path, "gen1ou", seed=0)
    assert ts.team_files == [a, b]
    assert len(ts) == 2
    assert ts.most_recent_team_file is None


def test_empty_dir_error_names_dir_and_format(tmp_path):
    write_team(tmp_path / "x.gen2ou_team", [gen1_mon("Tauros")])
    with pytest.raises(TeamError, match=re.escape(str(tmp_path))) as e:
        TeamSet(tmp_path, "gen1ou")
    assert "gen1ou" in str(e.value) and "*.gen1ou_team" in str(e.value)


def test_missing_dir_error(tmp_path):
    with pytest.raises(TeamError, match="does not exist"):
        TeamSet(tmp_path / "nope", "gen1ou")


def test_team_set_rejects_unknown_format(tmp_path):
    with pytest.raises(UnknownNameError, match="gen1oux"):
        TeamSet(tmp_path, "gen1oux")


# ------------------------------------------------------------------------------------------
# Sampling
# ------------------------------------------------------------------------------------------
def draw_files(ts: TeamSet, n: int):
    out = []
    for _ in range(n):
        ts.yield_team()
        out.append(ts.most_recent_team_file.name)
    return out


def test_seeded_sampling_is_reproducible():
    fmt_dir = BUILTIN_TEAMS_DIR / "gen3ou"
    first = draw_files(TeamSet(fmt_dir, "gen3ou", seed=7), 30)
    again = draw_files(TeamSet(fmt_dir, "gen3ou", seed=7), 30)
    other = draw_files(TeamSet(fmt_dir, "gen3ou", seed=8), 30)
    assert first == again
    assert first != other
    assert len(set(first)) > 5  # draws spread over the files


def test_sampling_is_uniform(three_team_dir):
    # 3000 draws from 3 files: each count is Binomial(3000, 1/3), sd ~ 25.8; +-100 is ~3.9 sd.
    counts = Counter(draw_files(TeamSet(three_team_dir, "gen1ou", seed=123), 3000))
    assert set(counts) == {"tauros.gen1ou_team", "snorlax.gen1ou_team", "chansey.gen1ou_team"}
    assert all(900 <= c <= 1100 for c in counts.values()), counts


def test_yield_team_matches_most_recent_file(three_team_dir):
    ts = TeamSet(three_team_dir, "gen1ou", seed=1)
    for _ in range(10):
        packed = ts.yield_team()
        lead = ts.most_recent_team_file.name.split(".")[0]
        assert packed.lower().startswith(lead + "|")


@pytest.mark.parametrize("fmt", BUILTIN_FORMATS)
def test_builtin_packed_teams_have_six_mons_and_no_whitespace(fmt):
    ts = TeamSet(BUILTIN_TEAMS_DIR / fmt, fmt, seed=0)
    assert len(ts) >= 12
    for path in ts.team_files:
        packed = pack_team_file(path)
        assert packed == packed.strip() and "\n" not in packed
        mons = packed.split("]")
        assert len(mons) == 6
        assert all(m.count("|") == 11 for m in mons)


def test_exact_packed_string_with_tera_type(tmp_path):
    path = write_team(tmp_path / "t.gen9ou_team", [GARCHOMP])
    assert pack_team_file(path) == GARCHOMP_PACKED


def test_messy_whitespace_parses_like_clean_text(tmp_path):
    clean = write_team(tmp_path / "clean.gen9ou_team", [GARCHOMP, GARCHOMP.replace("Garchomp", "Gliscor")])
    messy_text = (
        "\r\n \r\n"
        + GARCHOMP.replace("\n", "  \r\n")
        + "   \r\n\t\r\n\r\n"
        + GARCHOMP.replace("Garchomp", "Gliscor").replace("\n", "\r\n")
        + "\r\n\r\n\r\n"
    )
    messy = tmp_path / "messy.gen9ou_team"
    messy.write_bytes(messy_text.encode())
    assert pack_team_file(messy) == pack_team_file(clean)
    assert pack_team_file(clean) == GARCHOMP_PACKED + "]" + GARCHOMP_PACKED.replace("Garchomp", "Gliscor")


def test_showdown_backup_header_is_dropped(tmp_path):
    path = write_team(tmp_path / "h.gen9ou_team", ["=== [gen9ou] My Team ===\n", GARCHOMP])
    assert pack_team_file(path) == GARCHOMP_PACKED


def test_hidden_power_ivs_stay_unspecified_unless_given(tmp_path):
    mon = "Zapdos @ Leftovers\nAbility: Pressure\nEVs: 252 SpA / 252 Spe\nTimid Nature\n- Hidden Power [Bug]\n"
    plain = write_team(tmp_path / "plain.gen3ou_team", [mon])
    given = write_team(tmp_path / "given.gen3ou_team",
                       [mon.replace("Timid Nature\n", "Timid Nature\nIVs: 30 Def / 30 SpD\n")])
    assert pack_team_file(plain).split("|")[8] == ""  # poke-env alone would write ",,,30,,30" (HP Water)
    assert pack_team_file(given).split("|")[8] == ",,30,,30,"


# ------------------------------------------------------------------------------------------
# Malformed files
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, message",
    [
        ("", "contains no Pokémon"),
        ("\n \n\t\n", "contains no Pokémon"),
        ("Tauros\nEVs: 252 Attack\n- Tackle\n", r"cannot parse Pokémon #1 \('Tauros'\): KeyError"),
        ("Tauros\nLevel: max\n- Tackle\n", r"cannot parse Pokémon #1 \('Tauros'\): ValueError"),
        ("Tauros @ Leftovers @ Leftovers\n- Tackle\n", "cannot parse Pokémon #1"),
        (gen1_mon("Tauros") + "\nSnorlax\n" + STAT_EXP + "\n", r"Pokémon #2 \('Snorlax'\) has no moves"),
        ("\n\n".join([gen1_mon("Tauros")] * 7), "holds 7 Pokémon"),
        ("=== a ===\n" + gen1_mon("Tauros") + "\n=== b ===\n" + gen1_mon("Snorlax"), "holds 2 teams"),
        (gen1_mon("Tauros") + "\n=== late ===\n", "header must come before"),
        ("Tau|ros\n- Tackle\n", r"contains a '\|' or '\]'"),
        ("Zapdos\n- Hidden Power [Fairy]\n", "cannot pack Pokémon #1"),
    ],
)
def test_malformed_file_error_names_the_file(tmp_path, text, message):
    path = tmp_path / "bad.gen1ou_team"
    path.write_text(text)
    with pytest.raises(TeamError, match=message) as e:
        pack_team_file(path)
    assert str(path) in str(e.value)


def test_malformed_file_raises_from_yield_team(tmp_path):
    bad = tmp_path / "bad.gen1ou_team"
    bad.write_text("Tauros\nEVs: 252 Attack\n- Tackle\n")
    ts = TeamSet(tmp_path, "gen1ou", seed=0)
    with pytest.raises(TeamError, match=re.escape(str(bad))):
        ts.yield_team()
    assert ts.most_recent_team_file is None


def test_non_utf8_file_is_a_team_error(tmp_path):
    path = tmp_path / "bin.gen1ou_team"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TeamError, match="Cannot read team file"):
        pack_team_file(path)


# ------------------------------------------------------------------------------------------
# block_team
# ------------------------------------------------------------------------------------------
class NoTauros(TeamSet):
    def block_team(self, packed_team):
        return "tauros" in packed_team.lower()


class BlockEverything(TeamSet):
    def block_team(self, packed_team):
        return True


def test_block_team_resamples(three_team_dir):
    ts = NoTauros(three_team_dir, "gen1ou", seed=3)
    leads = Counter(draw_files(ts, 300))
    assert set(leads) == {"snorlax.gen1ou_team", "chansey.gen1ou_team"}


def test_block_team_gives_up_after_100_draws(three_team_dir):
    ts = BlockEverything(three_team_dir, "gen1ou", seed=0)
    with pytest.warns(UserWarning, match=r"rejected \d+ teams in a row") as record:
        with pytest.raises(TeamError, match="rejected 100 drawn teams"):
            ts.yield_team()
    counts = [int(re.search(r"rejected (\d+) teams", str(w.message)).group(1)) for w in record]
    assert counts == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert ts.most_recent_team_file is None


# ------------------------------------------------------------------------------------------
# get_metamon_teams
# ------------------------------------------------------------------------------------------
def test_team_set_names():
    assert METAMON_TEAM_SETS == {"competitive", "paper_variety", "paper_replays", "modern_replays", "modern_replays_v2"}
    assert BUILTIN_TEAM_SETS == {"builtin"}
    assert builtin_team_formats() == BUILTIN_FORMATS


@pytest.mark.parametrize("fmt", ["gen9randombattle", "gen1randombattle", "gen4randombattle"])
def test_random_battle_needs_no_team(fmt):
    assert get_metamon_teams(fmt) is None
    assert get_metamon_teams(fmt, "competitive") is None


@pytest.mark.parametrize("fmt", BUILTIN_FORMATS)
def test_builtin_set(fmt):
    ts = get_metamon_teams(fmt)
    assert isinstance(ts, TeamSet)
    assert ts.team_file_dir == BUILTIN_TEAMS_DIR / fmt
    assert ts.team_files == sorted((BUILTIN_TEAMS_DIR / fmt).glob(f"*.{fmt}_team"))
    assert all(p.name.startswith("builtin_") for p in ts.team_files)


def test_builtin_set_missing_format_lists_covered_formats():
    with pytest.raises(TeamError, match="no teams for 'gen5ou'; it covers gen1ou, gen2ou, gen3ou, gen4ou, gen9ou"):
        get_metamon_teams("gen5ou")


def test_unknown_format():
    with pytest.raises(UnknownNameError, match="gen9oo"):
        get_metamon_teams("gen9oo")


def test_custom_set_in_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path))
    f = write_team(tmp_path / "teams" / "mine" / "nested" / "x.gen1ou_team", [gen1_mon("Tauros")])
    ts = get_metamon_teams("gen1ou", "mine")
    assert ts.team_file_dir == tmp_path / "teams" / "mine"
    assert ts.team_files == [f]


def test_custom_set_as_directory_path(tmp_path, monkeypatch):
    monkeypatch.delenv("METAMON_CACHE_DIR", raising=False)
    f = write_team(tmp_path / "elsewhere" / "x.gen2ou_team", [gen1_mon("Tauros")])
    ts = get_metamon_teams("gen2ou", str(tmp_path / "elsewhere"))
    assert ts.team_files == [f]


def test_custom_set_type(tmp_path):
    write_team(tmp_path / "x.gen1ou_team", [gen1_mon("Tauros")])
    assert type(get_metamon_teams("gen1ou", str(tmp_path), set_type=NoTauros)) is NoTauros


def test_missing_custom_set_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path))
    with pytest.raises(TeamError) as e:
        get_metamon_teams("gen1ou", "my_missing_set")
    msg = str(e.value)
    assert "Unknown team set 'my_missing_set'" in msg
    assert str(tmp_path / "teams" / "my_missing_set") in msg
    assert "competitive" in msg and "builtin" in msg and "*.gen1ou_team" in msg


def test_missing_custom_set_without_cache_dir(monkeypatch):
    monkeypatch.delenv("METAMON_CACHE_DIR", raising=False)
    with pytest.raises(TeamError, match="METAMON_CACHE_DIR is not set"):
        get_metamon_teams("gen1ou", "my_missing_set")


# ------------------------------------------------------------------------------------------
# Downloads (offline)
# ------------------------------------------------------------------------------------------
def test_official_set_offline_error(tmp_path, monkeypatch):
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path))
    with pytest.raises(MetamonError) as e:
        get_metamon_teams("gen1ou", "competitive")
    msg = str(e.value)
    assert "Could not reach the Hugging Face Hub (HF_HUB_OFFLINE is set)" in msg
    assert "'competitive/gen1ou.tar.gz' at revision 'v4' of the Hub dataset 'jakegrigsby/metamon-teams'" in msg
    dest = tmp_path / "teams" / "competitive" / "gen1ou"
    assert (
        f"extract_local_archive(<that file>, {str(dest)!r}, dataset_key='teams', "
        "name='competitive/gen1ou', version='v4')" in msg
    )
    assert "https://huggingface.co/datasets/jakegrigsby/metamon-teams/resolve/v4/competitive/gen1ou.tar.gz" in msg
    # Nothing half-made is left behind.
    assert list((tmp_path / "teams" / "competitive").iterdir()) == []
    assert not (tmp_path / "version_reference.json").exists()


def fake_hub(monkeypatch, archive=None, error=None):
    """Replace huggingface_hub.hf_hub_download: copy ``archive`` into local_dir, or raise."""
    calls = []

    def fake_download(**kwargs):
        calls.append(kwargs)
        if error is not None:
            raise error
        target = Path(kwargs["local_dir"]) / kwargs["filename"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(archive.read_bytes())
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    return calls


def test_download_teams_through_the_hub_api(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("METAMON_CACHE_DIR", str(cache))
    archive = make_tarball(tmp_path / "src.tar.gz", {"gen3ou/team1.gen3ou_team": "x", "gen3ou/team2.gen3ou_team": "y"})
    calls = fake_hub(monkeypatch, archive)
    dest = download_teams("gen3ou", "modern_replays", version="v3")
    assert dest == cache / "teams" / "modern_replays" / "gen3ou"
    assert sorted(p.name for p in dest.iterdir()) == ["team1.gen3ou_team", "team2.gen3ou_team"]
    assert len(calls) == 1
    call = calls[0]
    assert (call["repo_id"], call["filename"], call["repo_type"], call["revision"]) == (
        "jakegrigsby/metamon-teams", "modern_replays/gen3ou.tar.gz", "dataset", "v3"
    )
    assert Path(call["local_dir"]).parent == dest.parent  # staged next to the destination...
    assert leftovers(dest.parent) == []  # ...and removed with the tarball afterwards
    assert get_active_dataset_versions()["teams"]["modern_replays/gen3ou"].startswith("version v3, downloaded ")
    # Reused without asking the Hub again; force_download fetches and replaces it.
    assert download_teams("gen3ou", "modern_replays") == dest and len(calls) == 1
    download_teams("gen3ou", "modern_replays", force_download=True)
    assert len(calls) == 2 and calls[1]["revision"] == "v4"
    assert get_active_dataset_versions()["teams"]["modern_replays/gen3ou"].startswith("version v4, downloaded ")


def test_hub_errors_become_metamon_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path))
    fake_hub(monkeypatch, error=EntryNotFoundError("404"))
    no_file = "The Hugging Face Hub has no 'paper_variety/gen9ou.tar.gz' at revision 'v4'"
    with pytest.raises(MetamonError, match=no_file):
        download_teams("gen9ou", "paper_variety")
    fake_hub(monkeypatch, error=httpx.ConnectError("connection refused"))
    unreachable = r"Could not reach the Hugging Face Hub .*\(ConnectError: connection refused\)"
    with pytest.raises(MetamonError, match=unreachable):
        download_teams("gen9ou", "competitive")
    assert leftovers(tmp_path / "teams" / "competitive") == []


def test_download_needs_cache_dir(monkeypatch):
    monkeypatch.delenv("METAMON_CACHE_DIR", raising=False)
    with pytest.raises(MetamonError, match="METAMON_CACHE_DIR is not set"):
        download_teams("gen1ou", "competitive")
    with pytest.raises(MetamonError, match="METAMON_CACHE_DIR"):
        get_active_dataset_versions()


def test_download_rejects_unknown_set_and_format(tmp_path, monkeypatch):
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path))
    with pytest.raises(UnknownNameError, match="metamon team set 'builtin'"):
        download_teams("gen1ou", "builtin")
    with pytest.raises(UnknownNameError, match="gen1ouu"):
        download_teams("gen1ouu", "competitive")


def test_existing_download_is_reused_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path))
    f = write_team(tmp_path / "teams" / "paper_replays" / "gen2ou" / "t.gen2ou_team", [gen1_mon("Tauros")])
    ts = get_metamon_teams("gen2ou", "paper_replays")
    assert ts.team_files == [f]


# ------------------------------------------------------------------------------------------
# Archive extraction
# ------------------------------------------------------------------------------------------
def make_tarball(path: Path, members: dict, links: dict = None) -> Path:
    """members: {archive name: text}; links: {archive name: symlink target}."""
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("METAMON_CACHE_DIR", str(root))
    return root


def extract(archive, dest, **kw):
    return extract_local_archive(archive, dest, dataset_key="teams", name="competitive/gen1ou", version="v4", **kw)


def leftovers(parent: Path):
    """Temporary folders the extraction might have left next to the destination."""
    return [p.name for p in parent.iterdir() if p.name.startswith(".")] if parent.exists() else []


@pytest.mark.parametrize("wrapped", [True, False])
def test_extract_local_archive_layouts_and_version_record(tmp_path, cache, wrapped):
    prefix = "gen1ou/" if wrapped else ""
    archive = make_tarball(
        tmp_path / "a.tar.gz",
        {f"{prefix}a.gen1ou_team": gen1_mon("Tauros"), f"{prefix}sub/b.gen1ou_team": gen1_mon("Snorlax")},
    )
    dest = cache / "teams" / "competitive" / "gen1ou"
    before = datetime.now(timezone.utc).replace(microsecond=0)
    assert extract(archive, dest) == dest
    extracted = sorted(str(p.relative_to(dest)) for p in dest.rglob("*.gen1ou_team"))
    assert extracted == ["a.gen1ou_team", "sub/b.gen1ou_team"]
    assert (dest / "a.gen1ou_team").read_text() == gen1_mon("Tauros")
    assert leftovers(dest.parent) == []

    record = json.loads((cache / "version_reference.json").read_text())
    assert list(record) == ["teams"] and list(record["teams"]) == ["competitive/gen1ou"]
    m = re.fullmatch(r"version v4, downloaded (.+)", record["teams"]["competitive/gen1ou"])
    stamp = datetime.fromisoformat(m.group(1))
    assert before <= stamp <= datetime.now(timezone.utc) + timedelta(seconds=1)
    assert get_active_dataset_versions() == record
    assert TeamSet(dest, "gen1ou").team_files == [dest / "a.gen1ou_team", dest / "sub" / "b.gen1ou_team"]


def test_extract_reuses_existing_dir_unless_forced(tmp_path, cache):
    dest = cache / "teams" / "competitive" / "gen1ou"
    extract(make_tarball(tmp_path / "one.tar.gz", {"one.gen1ou_team": "1"}), dest)
    first_record = get_active_dataset_versions()
    two = make_tarball(tmp_path / "two.tar.gz", {"two.gen1ou_team": "2"})
    extract(two, dest)
    assert [p.name for p in dest.iterdir()] == ["one.gen1ou_team"]
    assert get_active_dataset_versions() == first_record
    extract(two, dest, force=True)
    assert [p.name for p in dest.iterdir()] == ["two.gen1ou_team"]
    assert leftovers(dest.parent) == []


def test_two_datasets_are_recorded_side_by_side(tmp_path, cache):
    archive = make_tarball(tmp_path / "a.tar.gz", {"x.gen1ou_team": "x"})
    extract(archive, cache / "a")
    extract_local_archive(archive, cache / "b", dataset_key="parsed-replays", name="gen1ou", version="v3")
    record = get_active_dataset_versions()
    assert sorted(record) == ["parsed-replays", "teams"]
    assert record["parsed-replays"]["gen1ou"].startswith("version v3, downloaded ")
    assert record["teams"]["competitive/gen1ou"].startswith("version v4, downloaded ")


@pytest.mark.parametrize(
    "members, links, message",
    [
        ({"ok.gen1ou_team": "fine", "../evil": "pwned"}, None, r"member '\.\./evil' has a '\.\.' path component"),
        ({"gen1ou/../../evil": "pwned"}, None, "has a '..' path component"),
        ({"/etc/evil_abs": "pwned"}, None, r"member '/etc/evil_abs' has an absolute path"),
        ({"ok.gen1ou_team": "fine"}, {"link": "/etc/passwd"}, "Refusing to extract"),
        ({"ok.gen1ou_team": "fine"}, {"link": "../../outside"}, "Refusing to extract"),
    ],
)
def test_malicious_archives_are_rejected(tmp_path, cache, members, links, message):
    archive = make_tarball(tmp_path / "bad.tar.gz", members, links)
    dest = cache / "teams" / "competitive" / "gen1ou"
    with pytest.raises(MetamonError, match=message):
        extract(archive, dest)
    assert not (tmp_path / "evil").exists() and not (cache / "evil").exists()
    assert not dest.exists()
    assert leftovers(dest.parent) == []
    assert not (cache / "version_reference.json").exists()


def test_failed_forced_extraction_keeps_old_contents(tmp_path, cache):
    dest = cache / "d"
    extract(make_tarball(tmp_path / "good.tar.gz", {"keep.gen1ou_team": "k"}), dest)
    with pytest.raises(MetamonError):
        extract(make_tarball(tmp_path / "bad.tar.gz", {"../evil": "x"}), dest, force=True)
    assert [p.name for p in dest.iterdir()] == ["keep.gen1ou_team"]


def test_archive_root_in_dest_is_checked(tmp_path, cache):
    archive = make_tarball(tmp_path / "flat.tar.gz", {"a.gen1ou_team": "a"})
    with pytest.raises(MetamonError, match="expected to hold a single top-level folder 'gen1ou'"):
        extract(archive, cache / "gen1ou", archive_root_in_dest=True)
    wrapped = make_tarball(tmp_path / "wrapped.tar.gz", {"gen1ou/a.gen1ou_team": "a"})
    extract(wrapped, cache / "gen1ou", archive_root_in_dest=False)
    assert (cache / "gen1ou" / "gen1ou" / "a.gen1ou_team").exists()


def test_corrupt_or_missing_archive(tmp_path, cache):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not a tarball")
    with pytest.raises(MetamonError, match="is not a readable .tar.gz archive"):
        extract(junk, cache / "x")
    with pytest.raises(MetamonError, match="does not exist"):
        extract(tmp_path / "missing.tar.gz", cache / "y")
    assert leftovers(cache) == []


def test_corrupt_version_record(cache):
    cache.mkdir()
    (cache / "version_reference.json").write_text("{not json")
    with pytest.raises(MetamonError, match="Cannot read the dataset version record"):
        get_active_dataset_versions()


# ------------------------------------------------------------------------------------------
# validate_teams: environment errors (no node run needed)
# ------------------------------------------------------------------------------------------
def test_validate_teams_without_server_package(tmp_path):
    f = write_team(tmp_path / "t.gen1ou_team", [gen1_mon("Tauros")])
    with pytest.raises(ServerError, match="make server-install"):
        validate_teams([f], "gen1ou", server_root=tmp_path / "no_server")


def test_validate_teams_without_node(tmp_path, monkeypatch):
    f = write_team(tmp_path / "t.gen1ou_team", [gen1_mon("Tauros")])
    monkeypatch.setenv("PATH", str(tmp_path / "empty_bin"))
    with pytest.raises(ServerError, match="needs Node.js"):
        validate_teams([f], "gen1ou")


def test_validate_teams_unreadable_file_needs_no_node(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty_bin"))
    missing = tmp_path / "missing.gen1ou_team"
    result = validate_teams([missing], "gen1ou")
    assert list(result) == [missing]
    assert len(result[missing]) == 1
    assert result[missing][0].startswith(f"cannot read team file {missing}: [Errno 2] No such file")
