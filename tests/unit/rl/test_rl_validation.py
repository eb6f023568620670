"""Validation as a callable: MetamonAMAGOExperiment runs what train.py passes in, and
BattleValidation turns battle rows into AMAGO's validation metrics."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from metamon.amago.agent import Agent
from metamon.amago.nets.traj_encoders import TformerTrajEncoder
from metamon.amago.nets.tstep_encoders import FFTstepEncoder
from metamon.rl import validation
from metamon.rl.experiment import MetamonAMAGOExperiment
from metamon.rl.validation import BattleValidation


def _experiment(tmp_path):
    return MetamonAMAGOExperiment(
        run_name="val", ckpt_base_dir=str(tmp_path), max_seq_len=4, dataset=None,
        tstep_encoder_type=FFTstepEncoder, traj_encoder_type=TformerTrajEncoder, agent_type=Agent,
        obs_space=spaces.Dict({"x": spaces.Box(-1, 1, (2,), dtype=np.float32)}), action_space=spaces.Discrete(3),
    )


def test_experiment_calls_the_validation_callable_and_closes_it(tmp_path):
    exp = _experiment(tmp_path)
    assert exp.evaluate_val() == {}  # nothing configured
    seen, closed = [], []
    exp._policy_aclr = policy = torch.nn.Linear(1, 1)  # stands in for the agent ``start()`` prepares
    exp.configure_validation(lambda p: seen.append(p) or {"Average Win Rate in x": 0.5}, close=lambda: closed.append(1))
    assert exp.evaluate_val() == {"Average Win Rate in x": 0.5} and seen == [policy]
    exp.close()
    assert closed == [1]


def test_battle_validation_metrics_and_failures(monkeypatch):
    calls = []

    def fake_evaluate(policy, run_info, battle_format, opponents, battles, server_url, team_set, progress):
        calls.append((battle_format, tuple(opponents), battles, server_url, team_set, progress))
        if battle_format == "gen9ou":
            raise RuntimeError("server went away")
        return [{"opponent": o, "win_rate": 0.25 * (i + 1), "valid_actions": 1.0} for i, o in enumerate(opponents)]

    monkeypatch.setattr(validation, "evaluate_against_baselines", fake_evaluate)
    val = BattleValidation("info", ["gen1ou", "gen9ou"], ["Grunt", "GymLeader"], battles=3, server_url="h:1")
    with pytest.warns(UserWarning, match=r"validation battles in gen9ou failed: RuntimeError\('server went away'\)"):
        metrics = val("policy")
    assert metrics == {
        "Average Win Rate in gen1ou_vs_Grunt": 0.25, "Average Valid Actions in gen1ou_vs_Grunt": 1.0,
        "Average Win Rate in gen1ou_vs_GymLeader": 0.5, "Average Valid Actions in gen1ou_vs_GymLeader": 1.0,
        "Validation Errors in gen9ou": 1.0,
    }
    assert calls[0] == ("gen1ou", ("Grunt", "GymLeader"), 3, "h:1", "builtin", False)
    assert BattleValidation("info", [], ["Grunt"], battles=3)("policy") == {}  # no server started
    assert BattleValidation("info", ["gen1ou"], ["Grunt"], battles=0)("policy") == {}
    val.close()  # started no server: nothing to stop
