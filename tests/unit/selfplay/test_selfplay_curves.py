"""training_curves: generations' per-update metrics placed end to end, NaN and other metrics dropped."""

from __future__ import annotations

import csv

from metamon.amago.run_layout import RunLayout
from metamon.selfplay.train_vanilla_selfplay import plot_training_curves, training_curves

KL, ENT = "Damping/KL to Reference", "Policy Entropy (test-time gamma)"


def write_metrics(run_dir, rows):
    path = RunLayout(run_dir).metrics_csv
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "epoch", "gradient_steps", "metric", "value"])
        writer.writerow(["dataset", 0, 0, "Num Replays", 40])  # not a train-update row: ignored
        writer.writerows(rows)


def test_curves_are_offset_by_the_updates_of_earlier_generations(tmp_path):
    write_metrics(tmp_path / "gen_1", [["train-update", 0, 1, KL, 0.0], ["train-update", 0, 1, ENT, 1.5],
                                       ["train-update", 0, 150, KL, 0.25], ["train-update", 0, 150, ENT, 1.25],
                                       ["train-update", 0, 150, "Damping/KL per Update", "nan"]])
    write_metrics(tmp_path / "gen_2", [["train-update", 0, 1, KL, 0.0], ["train-update", 0, 100, KL, "nan"],
                                       ["train-update", 0, 100, ENT, 1.0]])
    (tmp_path / "gen_3").mkdir()  # a generation without logs adds no updates
    curves = training_curves([tmp_path / "gen_1", tmp_path / "gen_2", tmp_path / "gen_3"])
    assert curves[KL] == [(1, 0.0), (150, 0.25), (151, 0.0)]
    assert curves[ENT] == [(1, 1.5), (150, 1.25), (250, 1.0)]
    assert curves["boundaries"] == [150, 250]
    assert set(curves) == {KL, ENT, "boundaries"}  # NaN-only and unrequested metrics are left out
    plot_training_curves(curves, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_no_logged_metric_draws_nothing(tmp_path):
    write_metrics(tmp_path / "gen_1", [["train-update", 0, 5, "Actor Loss", 1.0]])
    curves = training_curves([tmp_path / "gen_1"])
    assert curves == {"boundaries": []}
    plot_training_curves(curves, tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()
