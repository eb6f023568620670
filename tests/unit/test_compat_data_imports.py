"""metamon's ``from metamon.data import ParsedReplayDataset`` / ``MetamonDataset``: lazy, and
reading trajectory files through them never imports torch (checked in a fresh interpreter)."""

import subprocess
import sys
import textwrap

import pytest

from metamon.errors import MetamonError

# Runs in a fresh interpreter: writes three tiny gen1ou battles, reads them back through both
# names, and prints what it saw. ``sys.argv[1]`` is the dataset root.
SCRIPT = textwrap.dedent(
    """
    import sys

    import metamon.data
    assert "metamon.data.parsed_replay_dset" not in sys.modules, "metamon.data imported the dataset eagerly"

    from metamon.data import MetamonDataset, ParsedReplayDataset
    from metamon.data.trajectory_file import trajectory_filename, write_trajectory
    from metamon.interface import (
        DefaultActionSpace, DefaultObservationSpace, DefaultShapedReward, TokenizedObservationSpace,
        UniversalMove, UniversalPokemon, UniversalState,
    )
    from metamon.tokenizer import get_tokenizer

    def mon(name, hp):
        tackle = UniversalMove("tackle", "normal", "physical", 35, 0.95, 0, 35, 35)
        return UniversalPokemon(
            name=name, hp_pct=hp, types="normal notype", item="noitem", ability="noability", lvl=100,
            status="nostatus", effect="noeffect", moves=[tackle], atk_boost=0, spa_boost=0, def_boost=0,
            spd_boost=0, spe_boost=0, accuracy_boost=0, evasion_boost=0, base_atk=80, base_spa=80,
            base_def=80, base_spd=80, base_spe=80, base_hp=80, tera_type="notype", base_species=name,
        )

    def state(t, won):
        return UniversalState(
            format="gen1ou", player_active_pokemon=mon("tauros", 1.0 - 0.1 * t),
            opponent_active_pokemon=mon("snorlax", 1.0 - 0.3 * t), available_switches=[mon("chansey", 1.0)],
            player_prev_move=UniversalMove.blank_move(), opponent_prev_move=UniversalMove.blank_move(),
            opponents_remaining=6, player_conditions="noconditions", opponent_conditions="noconditions",
            weather="noweather", battle_field="nofield", forced_switch=False, battle_won=won,
            battle_lost=False, can_tera=False, opponent_teampreview=[],
        )

    root = sys.argv[1]
    for i in range(3):
        states = [state(t, won=t == 3).to_dict() for t in range(4)]
        name = trajectory_filename(f"gen1ou-{i}", "alice", "bob", True)
        write_trajectory(root, "gen1ou", name, states, [0, 4, 0, -1])

    obs_space = TokenizedObservationSpace(DefaultObservationSpace(), get_tokenizer("metamon-gemma-v1"))
    old = ParsedReplayDataset(obs_space, DefaultActionSpace(), DefaultShapedReward(), dset_root=root,
                              formats=["gen1ou"])
    new = MetamonDataset(root, obs_space, DefaultActionSpace(), DefaultShapedReward(), ["gen1ou"])
    assert old.filenames == new.filenames and isinstance(new, ParsedReplayDataset)
    for dset in (old, new):
        for obs, actions, rewards, dones in (dset[i] for i in range(len(dset))):
            assert len(obs["text_tokens"]) == 4 and actions["chosen"] == [0, 4, 0]
            assert rewards.shape == (3,) and dones.tolist() == [False, False, True]
    print(len(old), len(new), "torch" in sys.modules)
    """
)


def test_reading_files_through_metamon_data_never_imports_torch(tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "3", "False"]


def test_lazy_exports_are_the_dataset_classes():
    import metamon.data
    from metamon.data import parsed_replay_dset

    assert metamon.data.ParsedReplayDataset is parsed_replay_dset.ParsedReplayDataset
    assert metamon.data.MetamonDataset is parsed_replay_dset.MetamonDataset
    assert {"MetamonDataset", "ParsedReplayDataset"} <= set(dir(metamon.data))
    with pytest.raises(AttributeError, match="no attribute 'NoSuchDataset'"):
        metamon.data.NoSuchDataset  # noqa: B018


def test_metamon_dataset_needs_a_folder():
    from metamon.data import MetamonDataset

    with pytest.raises(MetamonError, match="pass dset_root"):
        MetamonDataset(None, None, None, None)


def test_a_torch_dataloader_takes_the_dataset_as_is(tmp_path):
    """No torch base class is needed: DataLoader indexes any object with len() and [i]."""
    torch_data = pytest.importorskip("torch.utils.data")
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    from metamon.data import ParsedReplayDataset
    from metamon.interface import DefaultActionSpace, DefaultObservationSpace, DefaultShapedReward

    dset = ParsedReplayDataset(DefaultObservationSpace(), DefaultActionSpace(), DefaultShapedReward(),
                               dset_root=tmp_path, formats=["gen1ou"])
    loader = torch_data.DataLoader(dset, batch_size=None, shuffle=False)
    items = list(loader)
    assert len(items) == 3 and all(list(rewards.shape) == [3] for _, _, rewards, _ in items)
