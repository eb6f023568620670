"""MetamonAMAGODataset on trajectory files written in tmp_path (no server)."""

from datetime import datetime

import gymnasium as gym
import numpy as np
import pytest
import torch

from metamon.amago.loading import MISSING_ACTION_KEY, RLData, RLData_pad_collate, known_action_mask
from metamon.data.mixture import MixtureOfDatasets
from metamon.data.parsed_replay_dset import ParsedReplayDataset
from metamon.data.trajectory_file import trajectory_filename, write_trajectory
from metamon.interface import (
    BinaryReward,
    DefaultActionSpace,
    MinimalActionSpace,
    TeamPreviewObservationSpace,
    TokenizedObservationSpace,
    UniversalMove,
    UniversalPokemon,
    UniversalState,
)
from metamon.rl import MISSING_ACTION_MASK_KEY, MetamonRLError
from metamon.rl.dataset import MetamonAMAGODataset, obs_gym_space
from metamon.tokenizer import get_tokenizer

FMT = "gen9ou"


def move(name):
    return UniversalMove(name, "normal", "physical", 80, 1.0, 0, 16, 16)


def mon(name, hp=1.0, n_moves=2):
    moves = [move(m) for m in ("tackle", "bodyslam", "return", "facade")[:n_moves]]
    return UniversalPokemon(
        name=name, hp_pct=hp, types="normal notype", item="leftovers", ability="thickfat", lvl=100,
        status="nostatus", effect="noeffect", moves=moves, atk_boost=0, spa_boost=0, def_boost=0,
        spd_boost=0, spe_boost=0, accuracy_boost=0, evasion_boost=0, base_atk=110, base_spa=65,
        base_def=65, base_spd=110, base_spe=30, base_hp=160, tera_type="notype", base_species=name,
    )


def state(t, won=False, can_tera=False, forced_switch=False):
    return UniversalState(
        format=FMT, player_active_pokemon=mon("snorlax", 1.0 - 0.1 * t),
        opponent_active_pokemon=mon("blissey", 1.0 - 0.2 * t, n_moves=1),
        available_switches=[mon("tauros")], player_prev_move=UniversalMove.blank_move(),
        opponent_prev_move=UniversalMove.blank_move(), opponents_remaining=6,
        player_conditions="noconditions", opponent_conditions="noconditions", weather="noweather",
        battle_field="nofield", forced_switch=forced_switch, battle_won=won, battle_lost=False,
        can_tera=can_tera, opponent_teampreview=["blissey"] * 6,
    )


# 2 known moves, 1 switch: legal = {0, 1, 4} (+ {9, 10} with can_tera).
# Actions: 0 (legal), -1 (unrevealed), 7 (switch slot 4: NOT in the legal set), 10 (tera move 2).
ACTIONS = [0, -1, 7, 10, -1]


def write_battle(root, i=1):
    states = [state(0), state(1), state(2), state(3, can_tera=True), state(4, won=True)]
    name = trajectory_filename(f"{FMT}-{i:03d}", "alice", "bob", True, date=datetime(2025, 10, 27))
    write_trajectory(root, FMT, name, [s.to_dict() for s in states], ACTIONS)


@pytest.fixture(scope="module")
def obs_space():
    return TokenizedObservationSpace(TeamPreviewObservationSpace(), get_tokenizer("metamon-gemma-v1"))


def replays(root, obs_space, action_space, **kwargs):
    return ParsedReplayDataset(obs_space, action_space, BinaryReward(), dset_root=root, formats=[FMT], **kwargs)


def test_trajectory_fields(tmp_path, obs_space):
    write_battle(tmp_path)
    dset = MetamonAMAGODataset(replays(tmp_path, obs_space, DefaultActionSpace()), DefaultActionSpace())
    data = dset.sample_random_trajectory()
    assert isinstance(data, RLData) and len(data) == 4  # T = 5 observations
    assert set(data.obs) == {"text_tokens", "numbers", "illegal_actions", "missing_action_mask"}
    assert data.obs["text_tokens"].shape == (5, 106) and data.obs["text_tokens"].dtype == torch.int64
    assert data.obs["numbers"].shape == (5, 55) and data.obs["numbers"].dtype == torch.float32
    # numbers are the observation space's, in order (player hp = 1 - 0.1 t at index 1)
    np.testing.assert_allclose(data.obs["numbers"][:, 1].numpy(), [1.0, 0.9, 0.8, 0.7, 0.6], rtol=1e-6)

    assert data.actions.dtype == torch.float32 and data.actions.shape == (4, 13)
    assert data.actions.sum(-1).tolist() == [1.0, 1.0, 1.0, 1.0]
    assert data.actions.argmax(-1).tolist() == [0, 0, 7, 10]  # the missing action reads as 0
    assert data.obs["missing_action_mask"].dtype == torch.bool
    assert data.obs["missing_action_mask"][:, 0].tolist() == [False, True, False, False, True]

    illegal = data.obs["illegal_actions"]
    assert illegal.shape == (5, 13) and illegal.dtype == torch.bool
    legal_rows = [set(np.flatnonzero(~row).tolist()) for row in illegal.numpy()]
    assert legal_rows == [{0, 1, 4}, {0, 1, 4}, {0, 1, 4, 7}, {0, 1, 4, 9, 10}, set()]
    assert dset.stats["chosen_marked_legal"] == 1  # only the 7 at t=2
    assert dset.stats["trajectories"] == 1

    assert data.rews[:, 0].tolist() == [0.0, 0.0, 0.0, 100.0] and data.rews.dtype == torch.float32
    assert data.dones[:, 0].tolist() == [False, False, False, True]
    assert data.time_idxs[:, 0].tolist() == [0, 1, 2, 3, 4] and data.time_idxs.dtype == torch.int64
    # derived rl2s: [r_{t-1}, a_{t-1}]
    assert data.rl2s.shape == (5, 14)
    assert data.rl2s[0].tolist() == [0.0] * 14
    assert data.rl2s[3, 0].item() == 0.0 and data.rl2s[3, 1 + 7].item() == 1.0
    assert data.rl2s[4, 0].item() == 100.0 and data.rl2s[4, 1 + 10].item() == 1.0


def test_missing_actions_leave_the_loss_masks(tmp_path, obs_space):
    """The dataset's missing actions are what the generic amago loss mask reads."""
    assert MISSING_ACTION_MASK_KEY == MISSING_ACTION_KEY
    write_battle(tmp_path)
    dset = MetamonAMAGODataset(replays(tmp_path, obs_space, DefaultActionSpace()), DefaultActionSpace())
    batch = RLData_pad_collate([dset.sample_random_trajectory()])
    assert known_action_mask(batch).tolist() == [[True, False, True, True]]


def test_minimal_action_space_folds_tera(tmp_path, obs_space):
    write_battle(tmp_path)
    space = MinimalActionSpace()
    dset = MetamonAMAGODataset(replays(tmp_path, obs_space, space), space)
    data = dset.sample_random_trajectory()
    assert data.actions.shape == (4, 9)
    assert data.actions.argmax(-1).tolist() == [0, 0, 7, 1]  # tera move 2 -> move 2
    legal_rows = [set(np.flatnonzero(~row).tolist()) for row in data.obs["illegal_actions"].numpy()]
    assert legal_rows == [{0, 1, 4}, {0, 1, 4}, {0, 1, 4, 7}, {0, 1, 4}, set()]
    assert dset.stats["chosen_marked_legal"] == 1


def test_windows_keep_absolute_time_and_collate(tmp_path, obs_space):
    write_battle(tmp_path)
    dset = MetamonAMAGODataset(
        MixtureOfDatasets([replays(tmp_path, obs_space, DefaultActionSpace())], [1.0], seed=3),
        DefaultActionSpace(),
    )
    full = dset.sample_random_trajectory()
    dset.configure(items_per_epoch=4, max_seq_len=2)
    starts = set()
    windows = [dset[0] for _ in range(40)]
    for w in windows:
        assert len(w) == 2
        t0 = int(w.time_idxs[0, 0])
        starts.add(t0)
        assert w.time_idxs[:, 0].tolist() == [t0, t0 + 1, t0 + 2]
        for key in full.obs:
            assert torch.equal(w.obs[key], full.obs[key][t0 : t0 + 3])
        assert torch.equal(w.actions, full.actions[t0 : t0 + 2])
    assert starts == {0, 1, 2}
    batch = RLData_pad_collate([full, windows[0]])
    assert batch.obs["illegal_actions"].shape == (2, 5, 13)
    assert bool(batch.obs["illegal_actions"][1, 3:].all())  # padding reads as "all illegal"
    assert batch.obs["text_tokens"][1, 3:].eq(4).all()


def test_space_description_and_hooks(tmp_path, obs_space):
    write_battle(tmp_path, 1)
    write_battle(tmp_path, 2)
    inner = replays(tmp_path, obs_space, DefaultActionSpace())
    dset = MetamonAMAGODataset(inner, DefaultActionSpace(), dset_name="replays")
    assert dset.save_new_trajs_to is None
    assert dset.formats == [FMT]
    assert dset.on_end_of_collection(None) == {"Num Replays": 2}
    assert "2 files" in dset.get_description()
    write_battle(tmp_path, 3)
    assert dset.on_end_of_collection(None) == {"Num Replays": 2}  # no refresh by default
    refreshing = MetamonAMAGODataset(inner, DefaultActionSpace(), refresh_files_every_epoch=True)
    assert refreshing.on_end_of_collection(None) == {"Num Replays": 3}

    space = obs_gym_space(obs_space, DefaultActionSpace())
    assert isinstance(space, gym.spaces.Dict)
    assert set(space.spaces) == {"text_tokens", "numbers", "illegal_actions"}
    assert space["illegal_actions"].shape == (13,) and space["illegal_actions"].dtype == np.bool_
    assert space["text_tokens"] == obs_space.gym_space["text_tokens"]
    assert obs_gym_space(obs_space, MinimalActionSpace())["illegal_actions"].shape == (9,)


def test_bad_inputs(tmp_path, obs_space):
    write_battle(tmp_path)
    with pytest.raises(MetamonRLError, match="max_seq_len=None"):
        MetamonAMAGODataset(replays(tmp_path, obs_space, DefaultActionSpace(), max_seq_len=2), DefaultActionSpace())
    with pytest.raises(MetamonRLError, match="random_sample"):
        MetamonAMAGODataset([1, 2], DefaultActionSpace())
    # items built with the 13-action space do not fit a 9-action space
    mismatched = MetamonAMAGODataset(replays(tmp_path, obs_space, DefaultActionSpace()), MinimalActionSpace())
    with pytest.raises(MetamonRLError, match="same action space"):
        mismatched.sample_random_trajectory()
