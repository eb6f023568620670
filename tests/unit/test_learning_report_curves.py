"""``benchmarks/learning_report.py`` curves: the metrics CSV read back, and a fork's curves shifted to
the updates of the checkpoint it started from."""

import json
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parents[2] / "benchmarks" / "learning_report.py"


@pytest.fixture(scope="module")
def report(load_script):
    return load_script(REPORT, "learning_report")


def _run(tmp_path: Path, name: str) -> Path:
    logs = tmp_path / name / "logs"
    logs.mkdir(parents=True)
    (logs / "metrics.csv").write_text(
        "key,epoch,gradient_steps,metric,value\n"
        "dataset,0,0,Num Replays,1000\n"
        "train-update,0,0,Approval (test-time gamma),0.5\n"
        "train-update,0,50,Approval (test-time gamma),0.25\n"
        "train-update,0,50,Policy Entropy (test-time gamma),1.5\n"
    )
    return tmp_path / name


def test_read_metrics_keeps_only_the_key_and_shifts_by_the_offset(tmp_path, report):
    run = _run(tmp_path, "fork")
    assert report.read_metrics(run) == {"Approval (test-time gamma)": [(0, 0.5), (50, 0.25)],
                                        "Policy Entropy (test-time gamma)": [(50, 1.5)]}
    assert report.read_metrics(run, offset=3000)["Approval (test-time gamma)"] == [(3000, 0.5), (3050, 0.25)]


def test_plots_cli_takes_offsets_per_run(tmp_path, report, monkeypatch):
    runs = [_run(tmp_path, "base"), _run(tmp_path, "fork")]
    seen = {}

    def fake_plot(run_dirs, out, offsets=None):
        seen.update(run_dirs=run_dirs, offsets=offsets)
        return []

    monkeypatch.setattr(report, "plot_diagnostics", fake_plot)
    assert report.main(["plots", "--runs", *map(str, runs), "--out", str(tmp_path / "p"),
                        "--offset", "fork", "3000"]) == 0
    assert seen["offsets"] == {"fork": 3000} and set(seen["run_dirs"]) == {"base", "fork"}


def _report(gap, argmax, td, slots):
    return {"approval_gap_points": gap, "critic_argmax_rate": argmax, "normalised_td_loss": td,
            "slots": [{"slot": i, "share": share, "approval": approval} for i, (share, approval) in enumerate(slots)]}


def test_curve_point_takes_the_slot_check_slots_only(report):
    # slot 1 holds 4 % of the steps: below the slot check's 5 %, so its 99 % approval is left out
    point = report.curve_point(_report(12.5, 0.2, 0.3, [(0.30, 0.5), (0.04, 0.99), (0.66, 0.2)]), 1500)
    assert point == {"updates": 1500, "critic_argmax_rate": 0.2, "normalised_td_loss": 0.3,
                     "approval_gap_points": 12.5, "slot_approval_range": (0.2, 0.5)}
    il = report.curve_point({"critic_argmax_rate": None}, 500)  # a run without a critic
    assert il["slot_approval_range"] is None and il["approval_gap_points"] is None


def test_heldout_curve_reports_each_checkpoint_at_its_updates(tmp_path, report, monkeypatch):
    calls = []

    def fake_report(run_dir, data_dir, epoch=None, battle_format="gen1ou"):
        calls.append((run_dir, epoch))
        return _report(10.0 + epoch, 0.1 * epoch, 1.0, [(1.0, 0.5)])

    monkeypatch.setattr(report, "heldout_report", fake_report)
    monkeypatch.setattr(report, "available_epochs", lambda run_dir: [0, 2, 5])
    curves = report.heldout_curve({"a": "RUN_A"}, "DATA", steps_per_epoch=500)
    assert [(p["updates"], p["approval_gap_points"]) for p in curves["a"]] == [(500, 10.0), (1500, 12.0), (3000, 15.0)]
    assert calls == [("RUN_A", 0), ("RUN_A", 2), ("RUN_A", 5)]
    forked = report.heldout_curve({"a": "RUN_A"}, "DATA", steps_per_epoch=500, epochs=[0], offsets={"a": 3000})
    assert forked["a"][0]["updates"] == 3500
    with pytest.raises(ValueError, match=r"no checkpoint for epochs \[1, 7\]"):
        report.heldout_curve({"a": "RUN_A"}, "DATA", steps_per_epoch=500, epochs=[1, 2, 7])


def test_plot_heldout_curve_writes_one_png(tmp_path, report):
    curves = {"d1k": [report.curve_point(_report(g, 0.2, 0.3, [(1.0, 0.4), (0.5, 0.9)]), u)
                      for u, g in [(500, 18.0), (1000, 13.6)]],
              "il": [report.curve_point({"critic_argmax_rate": None}, 500)]}  # nothing to draw: skipped
    path = Path(report.plot_heldout_curve(curves, tmp_path / "plots" / "curve.png"))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_heldout_curve_cli_checks_run_labels_and_writes_json(tmp_path, report, monkeypatch, capsys):
    assert report.main(["heldout_curve", "--runs", "no_label", "--data", "D", "--out", str(tmp_path / "c.png")]) == 2
    assert "LABEL=DIR" in capsys.readouterr().err
    assert report.main(["heldout_curve", "--runs", "a=X", "a=Y", "--data", "D", "--out", str(tmp_path / "c.png")]) == 2
    assert report.main(["heldout_curve", "--runs", "a=X", "--data", "D", "--out", str(tmp_path / "c.png"),
                        "--offset", "b", "100"]) == 2
    assert "--offset names runs that --runs does not: ['b']" in capsys.readouterr().err
    def fake_curve(runs, data, spe, epochs, fmt, offsets):
        return {k: [{"updates": offsets.get(k, 0) + spe, "dir": v}] for k, v in runs.items()}

    monkeypatch.setattr(report, "heldout_curve", fake_curve)
    monkeypatch.setattr(report, "plot_heldout_curve", lambda curves, out: str(out))
    out = tmp_path / "c.json"
    assert report.main(["heldout_curve", "--runs", "a=X", "--data", "D", "--out", str(tmp_path / "c.png"),
                        "--steps_per_epoch", "250", "--json_out", str(out), "--offset", "a", "3000"]) == 0
    assert json.loads(out.read_text()) == {"a": [{"updates": 3250, "dir": "X"}]}
