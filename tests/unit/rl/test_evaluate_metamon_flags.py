"""evaluate's metamon flags (``--agent --gens --formats --total_battles --checkpoints --team_set
--battle_backend``) and ``pretrained_vs_baselines``'s player / opponent construction, without
battles (the battles are in tests/integration/test_finetune_from_hf.py)."""

import contextlib

import pytest
import torch

from metamon.amago.checkpoints import save_weights
from metamon.battles import PlayerSpec
from metamon.errors import MetamonError
from metamon.rl import MODEL_CONFIG_DIR, TRAINING_CONFIG_DIR, evaluate
from metamon.rl.evaluate import (
    DEFAULT_OPPONENTS,
    battle_formats,
    check_battle_backend,
    pretrained_vs_baselines,
    split_battles,
)
from metamon.rl.run_dir import CONFIG_FILE, RunInfo, build_agent, policy_weights_path, write_run_files

INFO = RunInfo(observation_space="TeamPreviewObservationSpace", action_space="DefaultActionSpace",
               reward_function="DefaultShapedReward", tokenizer="metamon-gemma-v1", formats=["gen1ou"], max_seq_len=64)


def test_gens_and_formats():
    assert battle_formats() == ["gen1ou"]  # our default
    assert battle_formats(["gen1ou", "gen9ou"]) == ["gen1ou", "gen9ou"]
    assert battle_formats(["ou"], [1]) == ["gen1ou"]
    assert battle_formats(None, [1, 2]) == ["gen1ou", "gen2ou"]  # metamon's --formats default: ou
    assert battle_formats(["ou", "ubers"], [1, 9]) == ["gen1ou", "gen1ubers", "gen9ou", "gen9ubers"]
    assert battle_formats(["ou"]) == ["gen1ou"]  # metamon's --gens default: 1
    assert battle_formats(["OU"], [2]) == ["gen2ou"]
    with pytest.raises(MetamonError, match="full format ids .* or metamon's tier names"):
        battle_formats(["gen1ou", "ou"])
    with pytest.raises(MetamonError, match="full format ids"):
        battle_formats(["gen1ou"], [1])
    with pytest.raises(MetamonError, match="gen1oux"):
        battle_formats(["oux"], [1])


def test_total_battles_split_over_the_opponents():
    assert split_battles(10, 4) == [3, 3, 2, 2]
    assert split_battles(250, 6) == [42, 42, 42, 42, 41, 41] and sum(split_battles(250, 6)) == 250
    assert split_battles(2, 6) == [1, 1, 0, 0, 0, 0]
    with pytest.raises(MetamonError, match="total_battles must be an int >= 1"):
        split_battles(0, 3)


def test_battle_backend():
    assert check_battle_backend("poke-env") == "poke-env"
    with pytest.raises(MetamonError, match="battle_backend 'metamon' is not available.*poke-env"):
        check_battle_backend("metamon")


def _args(*flags):
    return evaluate._parser().parse_args(list(flags))


def test_flag_mapping():
    args = _args("--agent", "SmallRL", "--gens", "1", "9", "--formats", "ou", "--total_battles", "12",
                 "--checkpoints", "40", "38", "--team_set", "competitive", "--battle_backend", "poke-env",
                 "--async_mp_context", "forkserver")
    assert evaluate._check_args(args) == ["gen1ou", "gen9ou"]
    assert evaluate._battles_per_opponent(args) == [2] * 6  # 12 over the 6 default opponents
    assert args.team_set == "competitive" and args.checkpoints == [40, 38]
    args = _args("--player", "run:x@1", "--opponents", "Grunt", "GymLeader", "--total_battles", "3")
    assert evaluate._battles_per_opponent(args) == [2, 1]
    assert evaluate._battles_per_opponent(_args("--player", "run:x@1")) == 10  # our default, per opponent
    assert evaluate._battles_per_opponent(_args("--player", "run:x@1", "--battles", "4")) == 4
    with pytest.raises(SystemExit):  # one or the other
        _args("--battles", "4", "--total_battles", "8")


def test_agent_flag_is_a_pretrained_spec(monkeypatch):
    checked = []
    monkeypatch.setattr(evaluate, "check_spec", lambda spec: checked.append(PlayerSpec.parse(spec)))
    spec, epochs = evaluate._evaluated_agent(_args("--agent", "SmallRL", "--checkpoints", "40", "38", "40"))
    assert spec == PlayerSpec("pretrained", "SmallRL") and epochs == [40, 38]
    assert checked == [PlayerSpec("pretrained", "SmallRL", 40), PlayerSpec("pretrained", "SmallRL", 38)]
    spec, epochs = evaluate._evaluated_agent(_args("--agent", "SmallRL"))
    assert epochs == [None]  # the model's default checkpoint
    spec, epochs = evaluate._evaluated_agent(_args("--player", "pretrained:SmallRL@12"))
    assert spec == PlayerSpec("pretrained", "SmallRL") and epochs == [12]
    for flags, message in [
        (("--agent", "SmallRL", "--run_name", "x", "--ckpt_dir", "runs"), "give one agent"),
        (("--agent", "SmallRL", "--player", "run:x"), "give one agent"),
        (("--player", "run:x@2", "--checkpoints", "3"), "give the epochs once"),
        (("--player", "GymLeader"), "--player must name a trained run .* or a published model"),
    ]:
        with pytest.raises(MetamonError, match=message):
            evaluate._evaluated_agent(_args(*flags))


def test_checkpoints_of_a_run(tmp_path, capsys):
    run = tmp_path / "runs" / "tiny"
    write_run_files(run, INFO, "\n".join([(MODEL_CONFIG_DIR / "tiny_agent.gin").read_text(),
                                          (TRAINING_CONFIG_DIR / "il.gin").read_text()]))
    agent = build_agent(INFO, [run / CONFIG_FILE])
    for epoch in (0, 2):
        save_weights(agent, policy_weights_path(run, epoch))
    spec, epochs = evaluate._evaluated_agent(_args("--run_name", "tiny", "--ckpt_dir", str(tmp_path / "runs"),
                                                   "--checkpoints", "2", "0"))
    assert spec == PlayerSpec("run", str(run)) and epochs == [2, 0]
    assert evaluate.main(["--run_name", "tiny", "--ckpt_dir", str(tmp_path / "runs"), "--checkpoints", "2", "5"]) == 2
    assert "no epoch 5" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--battle_backend", "metamon"], "battle_backend 'metamon' is not available"),
    (["--gens", "1", "--formats", "gen1ou"], "full format ids"),
    (["--total_battles", "0"], "must be at least 1"),
])
def test_bad_metamon_flags_exit_2(flags, message, capsys):
    assert evaluate.main(["--player", "run:nowhere@1", *flags]) == 2
    assert message in capsys.readouterr().err


class _FakeModel:
    """What pretrained_vs_baselines needs of a registry entry."""

    model_name = "fake"
    default_checkpoint = 40

    def __init__(self):
        self.calls = []

    def initialize_agent(self, checkpoint=None, log=False, action_temperature=1.0):
        self.calls.append((checkpoint, action_temperature))
        return torch.nn.Linear(1, 1)

    def run_info(self):
        return INFO


def test_pretrained_vs_baselines_builds_one_player_per_baseline(monkeypatch):
    seen = {}

    def fake_evaluate(agent, info, battle_format, opponents, battles, server_url, **kwargs):
        seen.update(agent=agent, info=info, format=battle_format, opponents=opponents, battles=battles,
                    url=server_url, **kwargs)
        return [{"opponent": o, "battles": n, "win_rate": 0.5, "valid_actions": 1.0}
                for o, n in zip(opponents, battles) if n]

    started = []

    @contextlib.contextmanager
    def fake_server(url=None):
        started.append(url)
        yield 1234

    monkeypatch.setattr(evaluate, "evaluate_against_baselines", fake_evaluate)
    monkeypatch.setattr(evaluate, "showdown_url", fake_server)
    model = _FakeModel()
    teams = object()  # a team set object, as metamon's scripts pass get_metamon_teams(...)
    metrics = pretrained_vs_baselines(model, "gen1ou", teams, checkpoint=38, total_battles=9,
                                      parallel_actors_per_baseline=0, action_temperature=0.5, device="cpu",
                                      show_progress=False)
    assert model.calls == [(38, 0.5)]
    assert seen["info"] is INFO and seen["format"] == "gen1ou" and seen["url"] == 1234 and started == [None]
    assert seen["opponents"] == DEFAULT_OPPONENTS == ["PokeEnvHeuristic", "Gen1BossAI", "Grunt", "GymLeader",
                                                       "EmeraldKaizo", "RandomBaseline"]
    assert seen["battles"] == [2, 2, 2, 1, 1, 1] and seen["team_set"] is teams
    assert seen["max_concurrent"] == 1  # metamon's min(5, n // 10) is 0 for small n
    assert metrics["Average Win Rate in gen1ou_vs_Grunt"] == 0.5
    assert metrics["Average Valid Actions in gen1ou_vs_RandomBaseline"] == 1.0
    assert metrics["Battles in gen1ou_vs_GymLeader"] == 1

    pretrained_vs_baselines(model, "gen1ou", "competitive", total_battles=4, baselines=["Grunt", "GymLeader"],
                            parallel_actors_per_baseline=5, server_url="127.0.0.1:8000", show_progress=False)
    assert seen["opponents"] == ["Grunt", "GymLeader"] and seen["battles"] == [2, 2]
    assert seen["max_concurrent"] == 5 and seen["team_set"] == "competitive" and started[-1] == "127.0.0.1:8000"
    assert model.calls[-1] == (None, 1.0)  # the model's default checkpoint

    with pytest.raises(MetamonError, match="battle_backend 'metamon'"):
        pretrained_vs_baselines(model, "gen1ou", "builtin", battle_backend="metamon")
    with pytest.raises(MetamonError, match="NoSuchBaseline"):
        pretrained_vs_baselines(model, "gen1ou", "builtin", baselines=["NoSuchBaseline"])
