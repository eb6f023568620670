"""The mixed-quality learning benchmark's pieces end to end on a few real battles: ε-GymLeader
data from ``generate``, a weighted two-folder mix in ``train`` with binary_rl_warmup.gin, the
diagnostics in the metrics CSV, the held-out report (also of a critic with its own encoders scored
against the first run's policy) and the learning-curve plots."""

import csv
from pathlib import Path

import pytest

from metamon.data.generate import generate
from metamon.rl import train

FMT = "gen1ou"
REPORT = Path(__file__).resolve().parents[2] / "benchmarks" / "learning_report.py"


@pytest.fixture(scope="module")
def report_module(load_script):
    return load_script(REPORT, "learning_report")


def test_mixed_data_warmup_recipe_diagnostics_and_heldout_report(showdown_server, tmp_path, report_module, capsys):
    url = f"{showdown_server.host}:{showdown_server.port}"
    mirror, eps, heldout = tmp_path / "mirror", tmp_path / "eps", tmp_path / "heldout"
    sources = (("GymLeader", mirror, 1), ("eps:0.5:GymLeader", eps, 2), ("RandomBaseline", heldout, 3))
    for player, folder, seed in sources:
        summary = generate(player, "GymLeader", FMT, 2, folder, server_url=url, seed=seed, show_progress=False)
        assert summary.files_written == 4

    shared = [
        "--save_dir", str(tmp_path / "runs"), "--model_gin_config", "tiny_agent", "--parsed_replay_dir", str(mirror),
        "--custom_replay_dir", str(eps), "--custom_replay_sample_weight", "0.5", "--formats", FMT,
        "--epochs", "1", "--steps_per_epoch", "3", "--batch_size_per_gpu", "2", "--dloader_workers", "0",
        "--log_interval", "1", "--eval_gens", "--seed", "0",
    ]
    assert train.main(["--run_name", "warm", "--train_gin_config", "binary_rl_warmup.gin", *shared,
                       "--gin_bindings", "agent.Agent.filter_gate_min_steps = 2",
                       "--gin_bindings", "agent.Agent.filter_gate_max_steps = 2"]) == 0
    run = tmp_path / "runs" / "warm"
    with open(run / "logs" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["key"] == "train-update"]
    gate = [float(r["value"]) for r in rows if r["metric"] == "Filter Gate Open"]
    assert gate == [0.0, 0.0, 1.0]  # forced open at update 2
    metrics = {r["metric"] for r in rows}
    for name in ("Approval (test-time gamma)", "Normalised TD Loss (mean over gammas)",
                 "Data Action Is Critic Argmax (test-time gamma)", "Global Grad Norm (pre-clip)",
                 "Advantage q95 (test-time gamma)", "Log Pi(data) (gamma=0.999)"):
        assert name in metrics, name
    assert any(m.startswith("Approval Slot ") for m in metrics)

    report = report_module.heldout_report(run, heldout)
    assert set(report["steps"]) == {"random", "demonstrator"} and min(report["steps"].values()) > 0
    assert 0.0 <= report["approval"]["random"] <= 1.0
    assert "random_approval_20_points_below" in report["checks"]
    assert abs(sum(s["share"] for s in report["slots"]) - 1.0) < 1e-9
    total = sum(report["steps"].values())
    for slot in report["slots"]:  # each slot's groups add up to its steps and its pooled approval
        groups = slot["by_group"].values()
        assert sum(g["steps"] for g in groups) == round(slot["share"] * total)
        pooled = sum(g["approval"] * g["steps"] for g in groups) / sum(g["steps"] for g in groups)
        assert pooled == pytest.approx(slot["approval"], abs=1e-6)
    by_group, n = report["policy_by_group"], report["steps"]  # the groups' step-weighted mean is the pooled value
    pooled = sum(by_group[g]["agrees"] * n[g] for g in n) / sum(n.values())
    assert pooled == pytest.approx(report["policy_agrees_with_data"], abs=1e-6)

    assert train.main(["--run_name", "sep", "--train_gin_config", "critic_first.gin", *shared]) == 0
    crossed = report_module.heldout_report(tmp_path / "runs" / "sep", heldout, policy_run_dir=run)
    assert crossed["policy_run"] == str(run) and crossed["steps"] == report["steps"]
    for g in crossed["steps"]:  # the policy statistics are the first run's, the approvals this critic's
        assert crossed["policy_by_group"][g] == pytest.approx(report["policy_by_group"][g], abs=1e-6)
    own = report_module.heldout_report(tmp_path / "runs" / "sep", heldout)
    assert crossed["critic_argmax_rate"] == pytest.approx(own["critic_argmax_rate"], abs=1e-9)  # sep's critic
    assert crossed["normalised_td_loss"] != pytest.approx(report["normalised_td_loss"], rel=1e-6)  # not warm's
    capsys.readouterr()
    assert report_module.main(["heldout", "--run", str(run), "--data", str(heldout), "--policy_run", str(run)]) == 2
    assert "needs a critic with its own encoders" in capsys.readouterr().err  # warm's critic shares the policy's
    plots = report_module.plot_diagnostics({"warm": run}, tmp_path / "plots")
    assert {Path(p).name for p in plots} >= {"approval.png", "critic.png", "grad_norms.png"}
