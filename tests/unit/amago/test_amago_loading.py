"""RLData, padding collation, valid-step mask, window sampling and dataset mixtures."""

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from metamon.amago.loading import (
    MAGIC_PAD_VAL,
    Batch,
    DoNothingDataset,
    MixtureOfDatasets,
    RLData,
    RLData_pad_collate,
    RLDataset,
    valid_step_mask,
)


def make_traj(T: int, A: int = 3, t0: int = 0, tag: float = 0.0) -> RLData:
    """T observations; obs["x"][t] = t0 + t + tag, action a_t = t % A, reward r_t = t + 1."""
    idx = torch.arange(T - 1) % A
    return RLData(
        obs={
            "x": (torch.arange(t0, t0 + T, dtype=torch.float32) + tag)[:, None].repeat(1, 2),
            "flag": torch.zeros(T, 1, dtype=torch.bool),
            "tok": torch.arange(T, dtype=torch.int64)[:, None],
        },
        rews=torch.arange(1, T, dtype=torch.float32)[:, None],
        dones=torch.zeros(T - 1, 1, dtype=torch.bool),
        actions=torch.nn.functional.one_hot(idx, A).float(),
        time_idxs=torch.arange(t0, t0 + T, dtype=torch.int64)[:, None],
    )


class ListDataset(RLDataset):
    def __init__(self, trajs, dset_name=None, ready=True):
        super().__init__(dset_name)
        self.trajs = trajs
        self.ready = ready

    @property
    def ready_for_training(self):
        return self.configured and self.ready

    def sample_random_trajectory(self):
        return random.choice(self.trajs)


def test_rl2s_derivation():
    d = make_traj(4, A=3)
    assert len(d) == 3
    expected = torch.tensor(
        [[0.0, 0, 0, 0], [1.0, 1, 0, 0], [2.0, 0, 1, 0], [3.0, 0, 0, 1]]
    )
    assert torch.equal(d.rl2s, expected)
    one = make_traj(1)
    assert one.rl2s.shape == (1, 4) and torch.equal(one.rl2s, torch.zeros(1, 4))


def test_rl2s_given_is_kept_and_numpy_accepted():
    rl2s = np.full((3, 3), 7.0, dtype=np.float32)
    d = RLData(
        obs={"x": np.zeros((3, 1), dtype=np.float32)},
        rews=np.zeros((2, 1), dtype=np.float32),
        dones=np.zeros((2, 1), dtype=bool),
        actions=np.eye(2, dtype=np.float32),
        time_idxs=np.arange(3)[:, None].astype(np.int64),
        rl2s=rl2s,
    )
    assert torch.equal(d.rl2s, torch.full((3, 3), 7.0))


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("rews", torch.zeros(2, 1), r"rews must have shape \(3, 1\)"),
        ("dones", torch.zeros(3, 1), "dones must be bool"),
        ("time_idxs", torch.zeros(4, 1, dtype=torch.int32), "time_idxs must be int64"),
        ("obs", {"x": torch.zeros(5, 1)}, r"obs\['x'\] must have T=4 rows"),
        ("rl2s", torch.zeros(4, 3), r"rl2s must have shape \(4, 4\)"),
        ("actions", torch.zeros(3, 3, dtype=torch.int64), "actions must be a floating"),
    ],
)
def test_rldata_validation_names_the_input(field, value, match):
    d = make_traj(4)
    kwargs = dict(obs=d.obs, rews=d.rews, dones=d.dones, actions=d.actions, time_idxs=d.time_idxs)
    kwargs[field] = value
    with pytest.raises((ValueError, TypeError), match=match):
        RLData(**kwargs)


def test_collate_pads_every_tensor_with_magic_value():
    b = RLData_pad_collate([make_traj(3), make_traj(5)])
    assert isinstance(b, Batch) and b.batch_size == 2 and b.seq_len == 5
    assert b.rl2s.shape == (2, 5, 4) and b.actions.shape == (2, 4, 3) and b.rews.shape == (2, 4, 1)
    assert torch.all(b.rl2s[0, 3:] == MAGIC_PAD_VAL)
    assert torch.all(b.actions[0, 2:] == MAGIC_PAD_VAL) and torch.all(b.rews[0, 2:] == MAGIC_PAD_VAL)
    assert torch.all(b.obs["x"][0, 3:] == MAGIC_PAD_VAL)
    # bools pad True, ints pad 4 (dtype kept)
    assert b.dones.dtype == torch.bool and torch.equal(b.dones[0, :, 0], torch.tensor([False, False, True, True]))
    assert b.obs["flag"].dtype == torch.bool and b.obs["flag"][0, 3:].all() and not b.obs["flag"][0, :3].any()
    assert b.time_idxs.dtype == torch.int64 and b.time_idxs[0, :, 0].tolist() == [0, 1, 2, 4, 4]
    assert b.obs["tok"][0, :, 0].tolist() == [0, 1, 2, 4, 4]
    # the longest item is untouched
    assert torch.equal(b.obs["x"][1], make_traj(5).obs["x"])


def test_collate_rejects_mismatched_obs():
    a = make_traj(3)
    c = make_traj(3)
    c.obs["x"] = torch.zeros(3, 5)
    with pytest.raises(ValueError, match=r"obs\['x'\]"):
        RLData_pad_collate([a, c])
    c.obs = {"y": torch.zeros(3, 2)}
    with pytest.raises(ValueError, match="different obs keys"):
        RLData_pad_collate([a, c])


def test_valid_step_mask():
    b = RLData_pad_collate([make_traj(2), make_traj(4), make_traj(3)])
    m = valid_step_mask(b.rl2s)
    assert m.dtype == torch.bool
    assert m.tolist() == [[True, True, False, False], [True] * 4, [True, True, True, False]]


def test_batch_to_returns_self():
    b = RLData_pad_collate([make_traj(3)])
    assert b.to("cpu") is b
    assert b.to(torch.float64).rl2s.dtype == torch.float64


@pytest.mark.parametrize("mode", ["none", "both", "left", "right"])
@pytest.mark.parametrize("L", [5, 128])
def test_random_slice_window_lengths_and_time_continuity(mode, L):
    T = 3 * L
    traj = make_traj(T, t0=10)
    random.seed(0)
    saw_full = False
    for _ in range(200):
        w = RLDataset.random_slice(traj, L, mode)
        n_obs, n_act = w.time_idxs.shape[0], len(w)
        assert n_act == n_obs - 1 and 1 <= n_act <= L
        saw_full |= n_act == L
        if mode == "none":
            assert n_act == L  # exactly 129/128 for L=128
        t = w.time_idxs[:, 0]
        assert torch.equal(t, torch.arange(t[0], t[0] + n_obs))  # continuous, real time steps
        s = int(t[0]) - 10
        assert torch.equal(w.obs["x"], traj.obs["x"][s : s + n_obs])
        assert torch.equal(w.rl2s, traj.rl2s[s : s + n_obs])  # real rl2s, not re-derived zeros
        assert torch.equal(w.actions, traj.actions[s : s + n_act])
    assert saw_full


def test_random_slice_edge_windows_per_mode():
    """With L=4 and N=9: only "left"/"both" produce short windows at the start, "right"/"both" at the end."""
    traj = make_traj(10)
    random.seed(1)
    for mode, short_start, short_end in [
        ("none", False, False),
        ("left", True, False),
        ("right", False, True),
        ("both", True, True),
    ]:
        starts_short, ends_short = False, False
        for _ in range(300):
            w = RLDataset.random_slice(traj, 4, mode)
            if len(w) < 4:
                starts_short |= int(w.time_idxs[0]) == 0
                ends_short |= int(w.time_idxs[-1]) == 9
        assert (starts_short, ends_short) == (short_start, short_end), mode


def test_random_slice_short_traj_kept_whole_and_bad_mode():
    traj = make_traj(4)
    assert RLDataset.random_slice(traj, 3, "none") is traj
    with pytest.raises(ValueError, match="padded_sampling"):
        RLDataset.random_slice(make_traj(10), 3, "middle")


def test_dataset_len_getitem_and_configure_from_experiment():
    ds = ListDataset([make_traj(20)])
    with pytest.raises(ValueError, match="not configured"):
        len(ds)
    exp = SimpleNamespace(
        train_batches_per_epoch=3,
        batch_size=4,
        accelerator=SimpleNamespace(num_processes=2),
        max_seq_len=6,
        padded_sampling="none",
    )
    ds.configure_from_experiment(exp)
    assert len(ds) == 24 and ds.ready_for_training and ds.save_new_trajs_to is None
    item = ds[12345]
    assert len(item) == 6 and item.time_idxs.shape == (7, 1)
    with pytest.raises(ValueError, match="padded_sampling"):
        ds.configure(10, 5, padded_sampling="sometimes")


def test_mixture_weights_renormalised_and_logged():
    a = ListDataset([make_traj(3, tag=0.5)], dset_name="a")
    b = ListDataset([make_traj(3, tag=0.25)], dset_name="b", ready=False)
    mix = MixtureOfDatasets([a, b], [0.25, 0.75], dset_name="mix")
    mix.configure(8, 10)
    assert a.configured and b.configured
    assert mix.current_weights() == [1.0, 0.0]
    random.seed(0)
    assert all(float(mix[0].obs["x"][0, 0]) == 0.5 for _ in range(20))
    assert mix.on_end_of_collection(None) == {"a Current Sample Weight": 1.0, "b Current Sample Weight": 0.0}
    b.ready = True
    random.seed(0)
    draws = [float(mix[0].obs["x"][0, 0]) for _ in range(2000)]
    frac_b = draws.count(0.25) / len(draws)
    assert 0.70 < frac_b < 0.80
    a.ready = b.ready = False
    assert not mix.ready_for_training


def test_mixture_bad_weights():
    a, b = ListDataset([make_traj(3)]), ListDataset([make_traj(3)])
    with pytest.raises(ValueError, match="sum to 1"):
        MixtureOfDatasets([a, b], [0.5, 0.6])
    with pytest.raises(ValueError, match="2 datasets but 1"):
        MixtureOfDatasets([a, b], [1.0])


def test_do_nothing_dataset_never_ready():
    d = DoNothingDataset()
    d.configure(4, 4)
    assert not d.ready_for_training
    with pytest.raises(ValueError, match="no trajectories"):
        d.sample_random_trajectory()
