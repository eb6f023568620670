"""``benchmarks/synthetic_offline_rl.py``: the contextual chain's closed forms, and the trainer on it.

The task's quantities are checked against hand computations and against sampling; the slow test
trains the package's own il.gin and binary_rl.gin on the dense task, where the answer is known:
imitation reaches the logged player's value, and the critic ranks every context's actions right.
"""

import argparse
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "synthetic_offline_rl.py"


@pytest.fixture(scope="module")
def syn(load_script):
    return load_script(SCRIPT, "synthetic_offline_rl")


def _task(syn, **kwargs):
    table = np.array([[1.0, 0.2, 0.4], [0.0, 0.3, 1.0]])
    settings = dict(steps=4, demo_error=0.2, epsilon=0.5)
    settings.update(kwargs)
    return syn.ChainTask(table, **settings)


def test_logged_policy_and_normalised_value_by_hand(syn):
    task = _task(syn)
    # ε/A + (1 − ε)·[0.8 on the best, 0.1 on each other]
    expected = np.array([[0.5 / 3 + 0.4, 0.5 / 3 + 0.05, 0.5 / 3 + 0.05],
                         [0.5 / 3 + 0.05, 0.5 / 3 + 0.05, 0.5 / 3 + 0.4]])
    np.testing.assert_allclose(task.logged_policy(), expected)
    contexts = np.array([0, 1])
    assert task.normalised_value(np.eye(3)[task.best], contexts) == pytest.approx(1.0)
    assert task.normalised_value(np.full((2, 3), 1 / 3), contexts) == pytest.approx(0.0)
    # context 0 playing action 2: (0.4 − 1.6/3) / (1 − 1.6/3) = −0.2857...; context 1 the best: 1
    worse = np.array([[0, 0, 1.0], [0, 0, 1.0]])
    assert task.normalised_value(worse, contexts) == pytest.approx(((0.4 - 1.6 / 3) / (1 - 1.6 / 3) + 1) / 2)


def test_unknown_reward_is_refused(syn):
    with pytest.raises(ValueError, match="reward must be 'dense' or 'terminal', got 'sparse'"):
        _task(syn, reward="sparse")


def test_make_puts_one_best_action_per_context(syn):
    task = syn.ChainTask.make(5, 4, seed=3, steps=6, demo_error=0.1, epsilon=0.3)
    table = task.reward_table
    assert table.shape == (5, 4)
    assert ((table == 1.0).sum(axis=1) == 1).all() and (table[table < 1.0] <= 0.5).all()


def test_episodes_follow_the_logged_policy_and_the_reward_rules(syn):
    task = _task(syn, reward="dense", noise=0.0)
    episodes = task.episodes(4000, np.random.default_rng(0))
    contexts = np.concatenate([e["contexts"][:-1] for e in episodes])
    actions = np.concatenate([e["actions"] for e in episodes])
    for c in (0, 1):
        freq = np.bincount(actions[contexts == c], minlength=3) / (contexts == c).sum()
        np.testing.assert_allclose(freq, task.logged_policy()[c], atol=0.02)
    # dense without noise: the reward is R[c, a] exactly; random steps are about ε of all
    rewards = np.concatenate([e["rewards"] for e in episodes])
    np.testing.assert_array_equal(rewards, task.reward_table[contexts, actions])
    assert np.concatenate([e["random"] for e in episodes]).mean() == pytest.approx(0.5, abs=0.02)

    terminal = _task(syn, reward="terminal").episodes(20000, np.random.default_rng(1))
    rewards = np.stack([e["rewards"] for e in terminal])
    assert (rewards[:, :-1] == 0).all() and set(np.unique(rewards[:, -1])) == {-1.0, 1.0}
    # the win probability is the mean step reward: E[r_T] = 2 E[mean R] − 1, within 3 standard errors
    p = np.array([task.reward_table[e["contexts"][:-1], e["actions"]].mean() for e in terminal])
    assert rewards[:, -1].mean() == pytest.approx(2 * p.mean() - 1, abs=3 * rewards[:, -1].std() / np.sqrt(len(p)))


def test_tabular_visits_needed_by_hand(syn):
    # smallest best − runner-up gap: context 0, 1 − 0.4 = 0.6
    assert syn.tabular_visits_needed(_task(syn, reward="dense", noise=0.5)) == pytest.approx((2 * 0.5 / 0.6) ** 2)
    assert syn.tabular_visits_needed(_task(syn, reward="terminal")) == pytest.approx((2 * 4 / (2 * 0.6)) ** 2)


def test_tabular_best_rate_by_hand(syn):
    task = _task(syn)  # best actions: 0 in context 0, 2 in context 1
    episodes = [
        # returns-to-go 1, 1, 0: (c0, a0) -> 1, (c1, a1) -> 1, (c1, a2) -> 0
        {"contexts": np.array([0, 1, 1, 0]), "actions": np.array([0, 1, 2]), "rewards": np.array([0.0, 1.0, 0.0])},
        # returns-to-go 3, 2, 2: (c1, a2) -> 3, (c0, a1) -> 2, (c0, a0) -> 2
        {"contexts": np.array([1, 0, 0, 1]), "actions": np.array([2, 1, 0]), "rewards": np.array([1.0, 0.0, 2.0])},
    ]
    # context 0: a0 mean 1.5, a1 2, a2 never -> argmax a1 (wrong); context 1: a1 1, a2 1.5 -> a2 (right)
    assert syn.tabular_best_rate(task, episodes) == 0.5


@pytest.mark.slow
def test_binary_rl_critic_ranks_actions_on_the_dense_task_and_il_imitates(syn, tmp_path):
    """Known answer: the best action of every context is argmax R. The critic of binary_rl.gin finds
    it at (nearly) every held-out step and its policy plays it; il.gin reproduces the data's value."""
    args = argparse.Namespace(lr=1e-3, warmup=20, gin_bindings=[], max_seq_len=12, updates=400, batch_size=12, seed=0)
    task = syn.ChainTask.make(4, 4, seed=0, steps=8, demo_error=0.2, epsilon=0.5, reward="dense", noise=0.3)
    episodes = task.episodes(300, np.random.default_rng(0))
    heldout = task.episodes(60, np.random.default_rng(1))
    data_value = task.normalised_value(task.logged_policy(), np.arange(4))

    il = syn.heldout_measures(syn.train(task, episodes, "il.gin", args, tmp_path), task, heldout)
    assert il["value"] == pytest.approx(data_value, abs=0.12)
    assert "critic_best" not in il

    rl = syn.heldout_measures(syn.train(task, episodes, "binary_rl.gin", args, tmp_path), task, heldout)
    assert rl["critic_best"] >= 0.95
    assert rl["value"] >= 0.85 > data_value + 0.3


def _row(arm, episodes, value, critic_best=None):
    row = {"episodes": episodes, "arm": arm, "value": value, "actions": 6, "tabular_best": 0.9, "data_value": 0.38}
    if critic_best is not None:
        row["critic_best"] = critic_best
    return row


def test_from_json_plots_earlier_rows_and_refuses_bad_labels(syn, tmp_path):
    import json

    import matplotlib.image

    dense, terminal = tmp_path / "dense.json", tmp_path / "terminal.json"
    dense.write_text(json.dumps([_row("il", 1000, 0.37), _row("binary_rl", 1000, 0.99, critic_best=1.0)]))
    terminal.write_text(json.dumps([_row("il", 5000, 0.37), _row("binary_rl", 5000, 0.08, critic_best=0.09)]))
    out = tmp_path / "fig.png"
    assert syn.main(["--from_json", f"dense={dense}", f"terminal={terminal}", "--plot", str(out)]) == 0
    height, width, _ = matplotlib.image.imread(out).shape
    assert width >= 800 and height >= 700                      # two panels, one column per condition
    for argv in (["--from_json", f"dense={dense}"],            # no --plot
                 ["--from_json", str(dense), "--plot", str(out)],  # no LABEL=
                 ["--from_json", f"a={dense}", f"a={terminal}", "--plot", str(out)]):  # label twice
        with pytest.raises(SystemExit):
            syn.main(argv)
