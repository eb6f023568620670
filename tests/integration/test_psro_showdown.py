"""``python -m metamon.nash.run_psro`` end to end on a real local Showdown server, tiny: a
population of two baselines, phase 0, one PSRO iteration whose best response is a tiny_agent
trained from scratch on a few battles, then finetuned on its battles against σ; a re-run
resumes without playing or training again."""

from __future__ import annotations

import json

import pytest

import metamon.nash.run_psro as cli
from metamon.data.generate import generate
from metamon.nash.payoff import PayoffTable
from metamon.nash.plots import PLOT_FILES
from metamon.nash.population import Population
from metamon.nash.psro import LOG_FILE, PAYOFF_FILE, POPULATION_FILE
from metamon.rl.run_dir import available_epochs

FMT = "gen1ou"

pytestmark = [pytest.mark.slow]



def test_run_psro_one_iteration_with_a_learned_best_response(showdown_server, tmp_path):
    url = f"{showdown_server.host}:{showdown_server.port}"
    replays = tmp_path / "replays"
    assert generate("GymLeader", "Grunt", FMT, 3, replays, server_url=url, seed=1, show_progress=False).finished == 3
    flags = ["--phase0_dir", str(tmp_path / "p0"), "--save_dir", str(tmp_path / "psro"), "--num_iterations", "1",
             "--battle_format", FMT, "--population", "RandomBaseline", "GymLeader", "--battles_per_pair", "2",
             "--n_boot", "50", "--collection_battles", "2", "--oracle_epochs", "1", "--oracle_steps_per_epoch", "2",
             "--oracle_batch_size", "2", "--base_epochs", "1", "--oracle_model_config", "tiny_agent.gin",
             "--parsed_replay_dir", str(replays), "--server_url", url, "--seed", "0"]
    assert cli.main(flags) == 0

    meta = json.loads((tmp_path / "p0" / "meta_strategy.json").read_text())
    assert meta["battles"][0][1] == 2 and abs(sum(meta["sigma"]) - 1) < 1e-9
    population = Population.load(tmp_path / "psro" / POPULATION_FILE)
    assert population.names == ["RandomBaseline", "GymLeader", "br_0"]
    br = population["br_0"]
    run = tmp_path / "psro" / "oracle" / "runs" / "br0-r0"
    assert br.spec == f"run:{run.resolve()}@0" and available_epochs(run) == [0]
    assert available_epochs(tmp_path / "psro" / "oracle" / "base") == [0]
    data = list((tmp_path / "psro" / "oracle" / "data" / "br0" / FMT).iterdir())
    assert len(data) == 2  # the candidate's side of its 2 collection battles
    table = PayoffTable.load(tmp_path / "psro" / PAYOFF_FILE)
    assert table.n_battles("br_0", "RandomBaseline") == table.n_battles("br_0", "GymLeader") == 2
    log = json.loads((tmp_path / "psro" / LOG_FILE).read_text())
    (it,) = log["iterations"]
    assert it["best_response"] == "br_0" and it["added"] and 0 <= it["br_win_rate"]["low"] <= it["br_win_rate"]["high"]
    assert all((tmp_path / "psro" / name).exists() for name in PLOT_FILES)

    before = (tmp_path / "psro" / PAYOFF_FILE).read_text()
    assert cli.main(flags) == 0  # resumes: nothing to play, nothing to train
    assert (tmp_path / "psro" / PAYOFF_FILE).read_text() == before and available_epochs(run) == [0]
