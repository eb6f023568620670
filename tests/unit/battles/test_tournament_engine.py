"""The tournament engine with a fake battle runner (no Showdown): matchups, chunk plans, the
record format, resume that plays only the missing battles, errors never written."""

from __future__ import annotations

import functools
import itertools
import uuid
from collections import Counter

import pytest

from metamon.battles.tournament import (
    Chunk,
    ChunkResult,
    Matchup,
    plan_chunks,
    play_matchups,
    play_tournament,
    round_robin,
)
from metamon.battles.tournament_file import RECORD_KEYS, ResultsFile, pair_counts
from metamon.errors import MetamonError

FMT = "gen1ou"
URL = "127.0.0.1:1"  # never contacted by the fake runner
STRENGTH = {"GymLeader": 3, "Grunt": 2, "RandomBaseline": 1, "BugCatcher": 0}


class FakeRunner:
    """A worker that "plays" a chunk at once: the stronger player (STRENGTH) wins; battle ``k``
    of a chunk errors when ``k`` is in ``error_at``; a chunk of ``fail_player`` raises. Every
    call is appended to ``calls`` (in this process only)."""

    def __init__(self, server_url, calls=None, error_at=(), fail_player=None):
        self.prefix = f"{uuid.uuid4().hex[:8]}-{server_url.rsplit(':', 1)[1]}"
        self.calls = calls if calls is not None else []
        self.error_at, self.fail_player = set(error_at), fail_player
        self.counter = itertools.count()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def __call__(self, chunk: Chunk, progress) -> ChunkResult:
        self.calls.append(chunk)
        if chunk.player == self.fail_player:
            raise ConnectionError("server went away")
        records = []
        for k in range(chunk.n_battles):
            if k in self.error_at:
                continue
            won = STRENGTH[chunk.player] > STRENGTH[chunk.opponent]
            records.append({"battle_id": f"{self.prefix}-battle-{FMT}-{next(self.counter)}", "player": chunk.player,
                            "opponent": chunk.opponent, "result": "win" if won else "loss", "turns": 7 + k,
                            "format": FMT})
        progress(len(records))
        return ChunkResult(tuple(records), chunk.n_battles - len(records))


def run(matchups, path, calls=None, **kwargs):
    runner = functools.partial(FakeRunner, calls=[] if calls is None else calls, **kwargs.pop("runner", {}))
    return play_tournament(matchups, path, FMT, server_url=URL, team_set="builtin", open_worker=runner,
                           show_progress=False, **kwargs)


# ----------------------------------------------------------------------------- matchups, plans


def test_matchups_are_canonical_unordered_pairs():
    m = Matchup("baseline:Grunt", "GymLeader", 3)
    assert (m.player, m.opponent, m.pair) == ("Grunt", "GymLeader", ("Grunt", "GymLeader"))
    with pytest.raises(MetamonError, match="against itself"):
        Matchup("Grunt", "baseline:Grunt", 3)
    with pytest.raises(MetamonError, match="positive integer"):
        Matchup("Grunt", "GymLeader", 0)


def test_round_robin_plays_each_unordered_pair_once():
    matchups = round_robin(["GymLeader", "Grunt", "RandomBaseline"], 5)
    assert [(m.player, m.opponent, m.n_battles) for m in matchups] == [
        ("GymLeader", "Grunt", 5), ("GymLeader", "RandomBaseline", 5), ("Grunt", "RandomBaseline", 5)]
    with pytest.raises(MetamonError, match="named twice"):
        round_robin(["Grunt", "baseline:Grunt"], 5)
    with pytest.raises(MetamonError, match="at least two"):
        round_robin(["Grunt"], 5)


def test_chunks_alternate_sides_and_interleave_matchups():
    matchups = [Matchup("GymLeader", "Grunt", 5), Matchup("Grunt", "RandomBaseline", 2)]
    chunks = plan_chunks(matchups, chunk_size=2, seed=0)
    assert [(c.matchup, c.player, c.opponent, c.n_battles) for c in chunks] == [
        (0, "GymLeader", "Grunt", 2), (1, "Grunt", "RandomBaseline", 2),
        (0, "Grunt", "GymLeader", 2), (0, "GymLeader", "Grunt", 1)]
    assert chunks == plan_chunks(matchups, chunk_size=2, seed=0)
    assert [c.seed for c in chunks] != [c.seed for c in plan_chunks(matchups, chunk_size=2, seed=1)]
    with pytest.raises(MetamonError, match="chunk_size"):
        plan_chunks(matchups, chunk_size=0)


def test_bad_input_fails_before_playing(tmp_path):
    calls = []
    with pytest.raises(MetamonError, match="more than one matchup"):
        run([Matchup("GymLeader", "Grunt", 2), Matchup("Grunt", "GymLeader", 2)], tmp_path / "r.jsonl", calls)
    with pytest.raises(MetamonError, match="Unknown baseline"):
        run([Matchup("GymLeader", "NoSuchBaseline", 2)], tmp_path / "r.jsonl", calls)
    with pytest.raises(MetamonError, match="max_concurrent"):
        run([Matchup("GymLeader", "Grunt", 2)], tmp_path / "r.jsonl", calls, max_concurrent=0)
    assert calls == []


# ----------------------------------------------------------------------------- records, resume


def test_records_have_the_format_and_one_line_per_battle(tmp_path):
    path = tmp_path / "tournament_results.jsonl"
    report = run(round_robin(["GymLeader", "Grunt", "RandomBaseline"], 5), path, chunk_size=2)
    records = ResultsFile(path).read()
    assert len(records) == 15 == len({r["battle_id"] for r in records}) == report.played
    assert all(set(r) == set(RECORD_KEYS) and r["format"] == FMT for r in records)
    assert pair_counts(records) == {("Grunt", "GymLeader"): 5, ("GymLeader", "RandomBaseline"): 5,
                                    ("Grunt", "RandomBaseline"): 5}
    sides = Counter(r["player"] for r in records if {r["player"], r["opponent"]} == {"GymLeader", "Grunt"})
    assert sides == {"GymLeader": 3, "Grunt": 2}  # chunks of 2 + 2 + 1, sides alternating
    for r in records:  # results are from ``player``'s side
        assert (r["result"] == "win") == (STRENGTH[r["player"]] > STRENGTH[r["opponent"]])
    assert report.errors == 0 and [m.total for m in report.matchups] == [5, 5, 5]
    assert "15 of 15 missing battles played" in report.report()


def test_resume_plays_only_the_missing_battles(tmp_path):
    path = tmp_path / "tournament_results.jsonl"
    run(round_robin(["GymLeader", "Grunt"], 4), path)
    before = path.read_bytes()

    calls = []
    report = run(round_robin(["GymLeader", "Grunt"], 4), path, calls)
    assert calls == [] and report.played == 0 and path.read_bytes() == before
    assert report.matchups[0].existing == 4 and "0 of 0 missing" in report.report()

    report = run(round_robin(["Grunt", "GymLeader", "RandomBaseline"], 7), path, calls, chunk_size=2)
    asked = Counter()
    for chunk in calls:
        asked[tuple(sorted((chunk.player, chunk.opponent)))] += chunk.n_battles
    assert asked == {("Grunt", "GymLeader"): 3, ("Grunt", "RandomBaseline"): 7, ("GymLeader", "RandomBaseline"): 7}
    assert [(m.existing, m.played) for m in report.matchups] == [(4, 3), (0, 7), (0, 7)]
    assert pair_counts(ResultsFile(path).read())[("Grunt", "GymLeader")] == 7


def test_both_perspectives_already_in_the_file_count_once(tmp_path):
    path = tmp_path / "r.jsonl"
    ResultsFile(path).append([
        {"battle_id": "x-1", "player": "GymLeader", "opponent": "Grunt", "result": "win", "turns": 3, "format": FMT},
        {"battle_id": "x-1", "player": "Grunt", "opponent": "GymLeader", "result": "loss", "turns": 3, "format": FMT},
    ])
    calls = []
    report = run([Matchup("Grunt", "GymLeader", 3)], path, calls)
    assert report.matchups[0].existing == 1 and sum(c.n_battles for c in calls) == 2


def test_errored_battles_are_counted_not_written_and_replayed(tmp_path):
    path = tmp_path / "r.jsonl"
    report = run([Matchup("GymLeader", "Grunt", 6)], path, chunk_size=3, runner={"error_at": (1,)})
    assert (report.played, report.errors) == (4, 2) and len(ResultsFile(path).read()) == 4
    assert "errored battles were not written" in report.report()
    calls = []
    report = run([Matchup("GymLeader", "Grunt", 6)], path, calls)
    assert sum(c.n_battles for c in calls) == 2 and report.played == 2 and len(ResultsFile(path).read()) == 6


def test_a_failing_chunk_retires_the_worker_and_counts_as_errors(tmp_path):
    path = tmp_path / "r.jsonl"
    matchups = [Matchup("GymLeader", "Grunt", 2), Matchup("RandomBaseline", "BugCatcher", 2)]
    report = run(matchups, path, runner={"fail_player": "RandomBaseline"})
    first, second = report.matchups
    assert (first.played, first.errors) == (2, 0)
    assert (second.played, second.errors) == (0, 2) and "ConnectionError: server went away" in second.failures[0]
    assert len(ResultsFile(path).read()) == 2


def test_a_file_of_another_format_is_refused(tmp_path):
    path = tmp_path / "r.jsonl"
    ResultsFile(path).append([{"battle_id": "x", "player": "GymLeader", "opponent": "Grunt", "result": "win",
                               "turns": 3, "format": "gen2ou"}])
    with pytest.raises(MetamonError, match="gen2ou"):
        run([Matchup("GymLeader", "Grunt", 2)], path)


def test_play_matchups_in_spawned_workers(tmp_path):
    matchups = round_robin(["GymLeader", "Grunt", "RandomBaseline"], 4)
    finished = []
    outcomes = list(play_matchups(matchups, FMT, server_url=URL, parallel=2, chunk_size=2, open_worker=FakeRunner,
                                  progress=finished.append))
    assert len(outcomes) == 6 and all(o.failure is None and o.errors == 0 for o in outcomes)
    records = [r for o in outcomes for r in o.records]
    assert len({r["battle_id"] for r in records}) == 12 and sum(finished) == 12
    assert 1 <= len({r["battle_id"].split("-")[0] for r in records}) <= 2  # one nonce per worker
    assert all(outcomes[k].chunk.matchup == outcomes[k].matchup for k in range(6))
