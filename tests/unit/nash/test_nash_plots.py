"""Each PSRO plot renders (a real PNG) from a synthetic run: PSRO with the exact oracle on
biased rock-paper-scissors, plus a table with a missing pair and draws."""

from __future__ import annotations

import json

from metamon.nash import Population, run_psro_loop
from metamon.nash.matrix_game import ExactBestResponseOracle, ExactEvaluator, biased_rock_paper_scissors
from metamon.nash.payoff import PayoffTable
from metamon.nash.plots import PLOT_FILES, plot_exploitability, plot_payoff_heatmap, plot_sigma, write_psro_plots
from metamon.nash.psro import LOG_FILE

PNG = b"\x89PNG\r\n\x1a\n"


def test_every_plot_renders_from_a_psro_log(tmp_path):
    game = biased_rock_paper_scissors()
    evaluator = ExactEvaluator(game)
    run_psro_loop(tmp_path, evaluator, ExactBestResponseOracle(game), 5, initial=Population([game.member(0)]),
             battles_per_pair=evaluator.battles_per_pair, n_boot=50)
    paths = write_psro_plots(tmp_path)
    assert [p.name for p in paths] == list(PLOT_FILES)
    assert all(p.read_bytes().startswith(PNG) and p.stat().st_size > 5000 for p in paths)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left

    log = json.loads((tmp_path / LOG_FILE).read_text())
    assert plot_sigma(log, tmp_path / "s.png").read_bytes().startswith(PNG)
    assert plot_exploitability({"iterations": [], "final": None}, tmp_path / "e.png").read_bytes().startswith(PNG)


def test_the_heatmap_shows_missing_pairs_and_draws(tmp_path):
    table = PayoffTable(["a", "b", "c"])
    table.add_records([{"battle_id": "1", "player": "a", "opponent": "b", "result": "draw"},
                       {"battle_id": "2", "player": "a", "opponent": "b", "result": "win"}])
    assert plot_payoff_heatmap(table.counts(), tmp_path / "h.png").read_bytes().startswith(PNG)
