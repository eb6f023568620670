"""``benchmarks/learning_report.py`` curves: the metrics CSV read back, and a fork's curves shifted to
the updates of the checkpoint it started from."""

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
