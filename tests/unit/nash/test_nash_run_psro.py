"""``python -m metamon.nash.run_psro`` with a fake Showdown evaluator and a fake oracle: phase 0
written and reused, PSRO iterations from phase 0's battles, plots, resume, bad input → exit 2."""

from __future__ import annotations

import itertools
import json

import pytest

import metamon.nash.run_psro as cli
from metamon.nash.payoff import PayoffTable
from metamon.nash.plots import PLOT_FILES
from metamon.nash.population import Member, Population
from metamon.nash.psro import LOG_FILE, PAYOFF_FILE, POPULATION_FILE

STRENGTH = {"RandomBaseline": 0, "Grunt": 1, "GymLeader": 2, "BugCatcher": 3, "EmeraldKaizo": 4}
_ids = itertools.count()


class FakeEvaluator:
    """The stronger spec (STRENGTH) always wins."""

    def __init__(self):
        self.battles = 0

    def play(self, population, requests):
        for r in requests:
            a, b = population[r.a], population[r.b]
            result = "win" if STRENGTH[a.spec] > STRENGTH[b.spec] else "loss"
            self.battles += r.missing
            yield [{"battle_id": f"b{next(_ids)}", "player": a.name, "opponent": b.name, "result": result}
                   for _ in range(r.missing)]


class FakeOracle:
    """Returns BugCatcher, then EmeraldKaizo."""

    def __init__(self):
        self.calls = []

    def best_response(self, population, sigma, iteration):
        self.calls.append((population.names, list(sigma), iteration))
        return Member(f"br_{iteration}", ["BugCatcher", "EmeraldKaizo"][iteration], {"oracle": "rl"})


@pytest.fixture
def fakes(monkeypatch):
    made = {"evaluators": [], "oracles": []}

    def evaluator(*args, **kwargs):
        made["evaluators"].append(FakeEvaluator())
        return made["evaluators"][-1]

    def oracle(*args, **kwargs):
        made["oracles"].append(FakeOracle())
        return made["oracles"][-1]

    monkeypatch.setattr(cli, "ShowdownEvaluator", evaluator)
    monkeypatch.setattr(cli, "RLBestResponseOracle", oracle)
    return made


def flags(tmp_path, *extra):
    return ["--phase0_dir", str(tmp_path / "p0"), "--save_dir", str(tmp_path / "psro"), "--battles_per_pair", "4",
            "--n_boot", "50", "--num_iterations", "2", *extra]


def test_phase0_then_psro_iterations_with_logs_and_plots(tmp_path, fakes, capsys):
    assert cli.main(flags(tmp_path, "--population", "RandomBaseline", "Grunt", "leader=GymLeader")) == 0
    p0 = tmp_path / "p0"
    assert Population.load(p0 / POPULATION_FILE).names == ["RandomBaseline", "Grunt", "leader"]
    meta = json.loads((p0 / "meta_strategy.json").read_text())
    assert meta["sigma"] == [0.0, 0.0, 1.0] and meta["support"] == ["leader"]
    assert meta["battles"][0][1] == 4 and meta["win_rates"][2][0] == 1.0 and meta["wilson_high"][2][0] == 1.0
    assert (p0 / "payoff_heatmap.png").exists()
    # phase 0's 12 battles are reused; each best response plays 4 per member
    assert fakes["evaluators"][0].battles == 12 + 4 * 3 + 4 * 4
    log = json.loads((tmp_path / "psro" / LOG_FILE).read_text())
    assert [it["best_response"] for it in log["iterations"]] == ["br_0", "br_1"]
    assert log["iterations"][0]["sigma"] == [0.0, 0.0, 1.0] and log["iterations"][0]["br_win_rate"]["value"] == 1.0
    assert log["final"]["support"] == ["br_1"]
    assert all((tmp_path / "psro" / name).exists() for name in PLOT_FILES)
    out = capsys.readouterr().out
    assert "best response" in out and "final: sigma {'br_1': 1.0}" in out

    # a re-run plays nothing and trains nothing; more iterations continue the run
    assert cli.main(flags(tmp_path)) == 0
    assert fakes["evaluators"][-1].battles == 0 and fakes["oracles"][-1].calls == []
    table = PayoffTable.load(tmp_path / "psro" / PAYOFF_FILE)
    assert table.members == ["RandomBaseline", "Grunt", "leader", "br_0", "br_1"]


def test_the_default_population_and_reused_phase0(tmp_path, fakes, monkeypatch):
    monkeypatch.setattr(cli, "DEFAULT_POPULATION", ("Grunt", "GymLeader"))
    assert cli.main(flags(tmp_path, "--num_iterations", "0")) == 0
    assert Population.load(tmp_path / "p0" / POPULATION_FILE).specs == ["Grunt", "GymLeader"]
    assert not json.loads((tmp_path / "psro" / LOG_FILE).read_text())["iterations"]


def test_bad_input_exits_2_with_one_line(tmp_path, fakes, capsys):
    assert cli.main(flags(tmp_path, "--population", "Grunt", "GymLeader", "--num_iterations", "0")) == 0
    assert cli.main(flags(tmp_path, "--population", "Grunt", "RandomBaseline")) == 2
    assert "holds the population" in capsys.readouterr().err
    assert cli.main(flags(tmp_path / "x", "--population", "NoSuchPlayer")) == 2
    assert "NoSuchPlayer" in capsys.readouterr().err
    assert cli.main(flags(tmp_path / "y", "--population", "Grunt", "Grunt")) == 2
    assert "already has a member named 'Grunt'" in capsys.readouterr().err
