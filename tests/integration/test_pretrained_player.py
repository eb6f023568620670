"""A ``pretrained:NAME@EPOCH`` player (a tiny registry entry whose metamon-format checkpoint lives in
a local folder) battles a heuristic baseline on the local server, built by a PlayerFactory and by
the compete CLI."""

import warnings

import pytest
import torch
from _tiny_gin import tiny_agent_gin

from metamon.baselines.compete import main as compete_main
from metamon.battles import PlayerFactory, close_players, play_battles
from metamon.rl import pretrained
from metamon.rl.pretrained import PretrainedModel


@pytest.fixture
def tiny_entry(tmp_path, monkeypatch):
    """Register ``TinyE2E`` (checkpoints in a local folder with the Hub layout, epoch 4 saved)."""
    gin_file = tmp_path / "tiny_e2e.gin"
    gin_file.write_text(tiny_agent_gin("MetamonTstepEncoder", max_seq_len=16))
    repo = tmp_path / "repo"

    def tiny():
        return PretrainedModel(gin_file, "il", "tiny-e2e", tokenizer="metamon-gemma-v1",
                               observation_space="DefaultObservationSpace", action_space="MinimalActionSpace",
                               default_checkpoint=4, hf_repo_id=repo)

    monkeypatch.setitem(pretrained.PRETRAINED_MODELS, "TinyE2E", tiny)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="flash_attn or CUDA is not available")
        agent, _ = tiny()._build()
    path = repo / "tiny-e2e" / "ckpts" / "policy_weights" / "policy_epoch_4.pt"
    path.parent.mkdir(parents=True)
    torch.save(agent.state_dict(), path)  # the way metamon saves
    return "TinyE2E"


def test_pretrained_spec_plays_a_baseline(tiny_entry, showdown_server, capsys):
    config = showdown_server.server_configuration
    with PlayerFactory("gen1ou", server_configuration=config, team_set="builtin", max_concurrent_battles=2) as factory:
        player = factory.build(f"pretrained:{tiny_entry}@4")
        opponent = factory.build("GymLeader")
        try:
            results = play_battles(player, opponent, 2, timeout_s=180)
        finally:
            close_players(player, opponent)
    assert len(results) == 2 and [r.outcome for r in results if r.outcome == "error"] == []
    stats = player.stats()
    assert stats["decisions"] >= 2 and stats["inference_errors"] == 0 and stats["invalid_fallbacks"] == 0

    url = f"{showdown_server.host}:{showdown_server.port}"
    assert compete_main(["--battle_format", "gen1ou", "--player", f"pretrained:{tiny_entry}", "--opponent",
                         "RandomBaseline", "--battles", "2", "--concurrent", "2", "--server_url", url]) == 0
    assert f"pretrained:{tiny_entry}: " in capsys.readouterr().out
