import json

import numpy as np
import pytest

from metamon.nash import NashError, PayoffTable
from metamon.nash.payoff import PairRequest
from metamon.stats import wilson_interval


def rec(battle_id, player, opponent, result):
    return {"battle_id": battle_id, "player": player, "opponent": opponent, "result": result}


def _records():
    # A vs B: A wins b1, b2, b3; draw b4; B wins b5, b6  -> 3 W, 1 D, 2 L for A (n = 6)
    # every battle also seen from B's side, and b1 twice from A's side
    a_side = [rec("b1", "A", "B", "win"), rec("b2", "A", "B", "win"), rec("b3", "A", "B", "win"),
              rec("b4", "A", "B", "draw"), rec("b5", "A", "B", "loss"), rec("b6", "A", "B", "loss"),
              rec("b1", "A", "B", "win")]
    b_side = [rec("b1", "B", "A", "loss"), rec("b2", "B", "A", "loss"), rec("b3", "B", "A", "loss"),
              rec("b4", "B", "A", "tie"), rec("b5", "B", "A", "win"), rec("b6", "B", "A", "win")]
    # C vs A: 1 win for C, 1 draw; C vs B: B wins once
    other = [rec("c1", "C", "A", "win"), rec("c2", "A", "C", "draw"),
             rec("c3", "C", "B", "loss"), rec("c3", "B", "C", "win")]
    return a_side + b_side + other


def test_each_battle_counted_once_with_draws():
    table = PayoffTable(["A", "B", "C"])
    assert table.add_records(_records()) == 9
    assert table.n_unique_battles == 9
    assert table.pair_counts("A", "B") == (3, 1, 2) and table.pair_counts("B", "A") == (2, 1, 3)
    assert table.pair_counts("A", "C") == (0, 1, 1) and table.pair_counts("B", "C") == (1, 0, 0)
    c = table.counts()
    np.testing.assert_array_equal(c.wins, [[0, 3, 0], [2, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(c.draws, [[0, 1, 1], [1, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(c.n, [[0, 6, 2], [6, 0, 1], [2, 1, 0]])
    m = table.win_rate_matrix()
    expected = [[0.5, 3.5 / 6, 0.5 / 2], [2.5 / 6, 0.5, 1.0], [1.5 / 2, 0.0, 0.5]]
    np.testing.assert_allclose(m, expected, atol=1e-15)
    np.testing.assert_allclose(m + m.T, 1.0, atol=1e-15)
    # adding the same battles again (e.g. re-reading the logs) changes nothing
    assert table.add_records(_records()) == 0
    np.testing.assert_array_equal(table.counts().wins, c.wins)


def test_subset_and_order_of_matrix():
    table = PayoffTable(["A", "B", "C"])
    table.add_records(_records())
    np.testing.assert_allclose(table.win_rate_matrix(["C", "A"]), [[0.5, 0.75], [0.25, 0.5]])


def test_wilson_intervals_count_draws_as_half():
    table = PayoffTable(["A", "B", "C"])
    table.add_records(_records())
    low, high = table.wilson_intervals()
    assert (low[0, 1], high[0, 1]) == pytest.approx(wilson_interval(3.5, 6))
    assert (low[2, 0], high[2, 0]) == pytest.approx(wilson_interval(1.5, 2))
    assert low[1, 1] == high[1, 1] == 0.5
    assert low[0, 1] < table.win_rate_matrix()[0, 1] < high[0, 1]


def test_contradicting_views_raise_and_leave_table_unchanged():
    table = PayoffTable(["A", "B"])
    table.add_records([rec("x1", "A", "B", "win")])
    with pytest.raises(NashError, match="'x2'.*different outcomes"):
        table.add_records([rec("x2", "A", "B", "win"), rec("x2", "B", "A", "win")])
    with pytest.raises(NashError, match="'x1'.*A beat B.*A lost to B"):
        table.add_records([rec("x3", "A", "B", "loss"), rec("x1", "B", "A", "win")])
    assert table.n_unique_battles == 1 and table.pair_counts("A", "B") == (1, 0, 0)


@pytest.mark.parametrize("record,match", [
    (rec("z", "A", "Q", "win"), "battle 'z': 'Q' is not a member"),
    (rec("z", "A", "A", "win"), "against itself"),
    (rec("z", "A", "B", "error"), "'error' is not one of win, loss, draw"),
    ({"battle_id": "z", "player": "A", "result": "win"}, "needs the keys"),
    (rec("", "A", "B", "win"), "battle_id"),
])
def test_bad_records(record, match):
    table = PayoffTable(["A", "B"])
    with pytest.raises(NashError, match=match):
        table.add_records([record])


def test_missing_entry_is_an_error_naming_the_pair():
    table = PayoffTable(["A", "B", "C"])
    table.add_records([rec("1", "A", "B", "win")])
    with pytest.raises(NashError, match="'A' vs 'C', 'B' vs 'C'.*never assumed"):
        table.win_rate_matrix()
    with pytest.raises(NashError, match="'A' vs 'C'"):
        table.wilson_intervals()
    np.testing.assert_allclose(table.win_rate_matrix(["A", "B"]), [[0.5, 1.0], [0.0, 0.5]])


def test_save_load_round_trip_keeps_battle_ids(tmp_path):
    table = PayoffTable(["A", "B", "C"])
    table.add_records(_records())
    path = tmp_path / "payoffs.json"
    table.save(path)
    assert json.loads(path.read_text())["members"] == ["A", "B", "C"]
    again = PayoffTable.load(path)
    assert again.members == table.members and again.n_unique_battles == 9
    np.testing.assert_array_equal(again.counts().wins, table.counts().wins)
    np.testing.assert_array_equal(again.counts().draws, table.counts().draws)
    assert again.add_records(_records()) == 0  # de-duplication survives the restart
    with pytest.raises(NashError, match="does not exist"):
        PayoffTable.load(tmp_path / "none.json")


def test_pairs_needed_lists_only_new_pairs_and_resumes():
    table = PayoffTable(["A", "B", "C"])
    pairs = [("A", "B"), ("A", "C"), ("B", "C")]
    table.add_records([rec(f"{a}{b}{k}", a, b, "win") for a, b in pairs for k in range(2)])
    table.add_member("D")
    assert table.pairs_needed(["D"], battles_per_pair=2) == [
        PairRequest("A", "D", 2), PairRequest("B", "D", 2), PairRequest("C", "D", 2)]
    # killed half-way through D's battles: only what is missing is asked for again
    table.add_records([rec("ad1", "A", "D", "win"), rec("ad2", "D", "A", "loss"), rec("bd1", "B", "D", "draw")])
    assert table.pairs_needed(["D"], battles_per_pair=2) == [PairRequest("B", "D", 1), PairRequest("C", "D", 2)]
    # old pairs are never listed, even when they have fewer battles than asked for
    assert all("D" in (r.a, r.b) for r in table.pairs_needed(["D"], battles_per_pair=5))
    assert PairRequest("A", "B", 3) in table.pairs_needed(None, battles_per_pair=5)
    with pytest.raises(NashError, match="'E' is not a member"):
        table.pairs_needed(["E"])


def test_members_are_unique():
    table = PayoffTable(["A"])
    with pytest.raises(NashError, match="already has a member named 'A'"):
        table.add_member("A")
