"""The tournament results file: record format, append/read, torn tails, de-duplication, counts."""

from __future__ import annotations

import json

import pytest

from metamon.battles.tournament_file import (
    ResultsFile,
    check_record,
    flip_result,
    pair_counts,
    pair_key,
    unique_records,
)
from metamon.errors import MetamonError


def rec(battle_id, player="GymLeader", opponent="Grunt", result="win", turns=10, fmt="gen1ou", **extra):
    return {"battle_id": battle_id, "player": player, "opponent": opponent, "result": result, "turns": turns,
            "format": fmt, **extra}


def test_append_writes_one_sorted_json_line_per_record_and_reads_back(tmp_path):
    results = ResultsFile(tmp_path / "sub" / "tournament_results.jsonl")
    assert results.read() == [] and results.unique() == []
    assert results.append([rec("b1"), rec("b2", result="draw", note="kept")]) == 2
    assert results.append([]) == 0
    assert results.append([rec("b3", "Grunt", "GymLeader", "loss")]) == 1
    lines = results.path.read_text().splitlines()
    assert len(lines) == 3 and all(line == json.dumps(json.loads(line), sort_keys=True) for line in lines)
    assert [r["battle_id"] for r in results.read()] == ["b1", "b2", "b3"]
    assert results.read()[1]["note"] == "kept"


def test_an_invalid_record_writes_nothing(tmp_path):
    results = ResultsFile(tmp_path / "r.jsonl")
    with pytest.raises(MetamonError, match="result must be one of"):
        results.append([rec("b1"), rec("b2", result="tie")])
    assert not results.path.exists()


def test_a_torn_last_line_is_ignored_and_cut_by_the_next_append(tmp_path, caplog):
    results = ResultsFile(tmp_path / "r.jsonl")
    results.append([rec("b1"), rec("b2")])
    whole = results.path.read_bytes()
    results.path.write_bytes(whole + json.dumps(rec("b3")).encode()[:25])  # killed mid-write
    assert [r["battle_id"] for r in results.read()] == ["b1", "b2"]
    assert "incomplete last line" in caplog.text
    results.append([rec("b4")])
    assert results.path.read_bytes().startswith(whole)
    assert [r["battle_id"] for r in results.read()] == ["b1", "b2", "b4"]


def test_a_corrupt_complete_line_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(rec("b1")) + "\nnot json\n")
    with pytest.raises(MetamonError, match=r"line 2: not JSON"):
        ResultsFile(path).read()
    path.write_text(json.dumps(rec("b1")) + "\n" + json.dumps({"battle_id": "b2"}) + "\n")
    with pytest.raises(MetamonError, match=r"line 2: a tournament record needs the keys"):
        ResultsFile(path).read()


@pytest.mark.parametrize("bad, message", [
    (dict(result="WIN"), "result must be one of"),
    (dict(battle_id=""), "battle_id must be a non-empty string"),
    (dict(opponent="GymLeader"), "played itself"),
    (dict(format=""), "must be non-empty strings"),
])
def test_check_record_rejects(bad, message):
    with pytest.raises(MetamonError, match=message):
        check_record({**rec("b1"), **bad})


def test_both_perspectives_of_a_battle_count_once():
    records = [rec("b1"), rec("b1", "Grunt", "GymLeader", "loss"), rec("b2", result="draw"),
               rec("b2", "Grunt", "GymLeader", "draw"), rec("b2", result="draw"),
               rec("b3", "GymLeader", "RandomBaseline", "loss")]
    unique = unique_records(records)
    assert [r["battle_id"] for r in unique] == ["b1", "b2", "b3"]
    assert unique[0]["player"] == "GymLeader"  # the first record seen is kept
    assert pair_counts(records) == {("Grunt", "GymLeader"): 2, ("GymLeader", "RandomBaseline"): 1}


@pytest.mark.parametrize("other", [
    rec("b1", "Grunt", "GymLeader", "win"),          # both sides say they won
    rec("b1", "GymLeader", "RandomBaseline", "win"),  # different players
    rec("b1", fmt="gen2ou"),                          # different format
])
def test_conflicting_records_of_one_battle_are_an_error(other):
    with pytest.raises(MetamonError, match="recorded twice"):
        unique_records([rec("b1"), other])


def test_helpers():
    assert pair_key("b", "a") == pair_key("a", "b") == ("a", "b")
    assert [flip_result(r) for r in ("win", "loss", "draw")] == ["loss", "win", "draw"]
