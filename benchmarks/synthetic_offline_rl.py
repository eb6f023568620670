"""Offline RL on a task whose action values are known: does the critic rank actions, and when?

The Pokémon runs of ``docs/results.md`` ("Offline RL on mixed-quality data") found critics
that learn V but rank the data's actions at chance on held-out battles. This benchmark asks
the same questions of the same trainer (``MetamonAMAGOExperiment``, the package's training
gin files, the same optimiser settings) on a task where the answer is known in closed form,
so that "the critic cannot rank actions" is separated from "this data does not identify them".

Task (a contextual chain; K contexts, A actions, episodes of T decisions):

* each step's context ``c_t ~ Uniform(K)`` is drawn independently of the past and of every
  action, and observed as a one-hot vector; with ``--observe_score`` the observation also holds
  the score so far ``S_t = (1/T) Σ_{k<t} R[c_k, a_k]`` (the part of the win probability already
  decided, as a battle's hit points show the damage so far), so that the state is Markov and a
  one-step TD target carries each action's effect;
* a fixed table ``R[c, a]`` (``--task_seed``): in each context one best action with
  ``R = 1`` and the others ``U(0, 0.5)``;
* the demonstrator plays ``argmax_a R[c, a]`` with probability ``1 - d`` and a uniformly
  random other action otherwise; the logged player replaces its choice by a uniformly random
  action with probability ``ε`` (as ``eps:ε:GymLeader`` does) and each step records which;
* the reward (``--reward``):

  - ``dense``: ``r_t = R[c_t, a_t] + σ ξ_t`` with ``ξ_t ~ N(0, 1)``;
  - ``terminal``: ``r_t = 0`` before the last step and ``r_{T-1} = +1`` for a win, ``-1`` for
    a loss, the episode won with probability ``p = (1/T) Σ_t R[c_t, a_t]`` (a win/loss signal,
    as in a battle, whose expectation stays additive over the steps).

Because no action changes a later context, for every discount γ and every history:

    dense:     Q(s_t, a) − Q(s_t, a') = R[c_t, a] − R[c_t, a']
    terminal:  Q(s_t, a) − Q(s_t, a') = γ^(T−1−t) · 2 (R[c_t, a] − R[c_t, a']) / T

so the best action at every step is ``argmax_a R[c_t, a]``, whichever policy follows. In the
terminal task one step's true action gap is at most 2/T of a ±1 outcome whose standard
deviation is about 1: a tabular Monte-Carlo estimate of a (context, action) pair's value needs
about ``(z σ / Δ)²`` visits to separate a gap ``Δ``, i.e. ``(T/2 · z / gap)²`` with z ≈ 2
(``tabular_visits_needed``), and the data gives ``n T / (K A)`` visits per pair on average.

Measured on held-out episodes of the logged player (all steps, test-time γ, i.e. the last
head):

* ``critic_best``: the fraction of steps where argmax_a of the mean critic's Q(s_t, a) is the
  true best action (chance 1/A); ``critic_best_by_quarter`` the same over each quarter of the
  episode's steps (a terminal reward reaches the early steps only through T bootstraps);
* ``approval_random`` / ``approval_demo``: the binary filter's approval (advantage > 0) of the
  random player's steps and of the demonstrator's, and their gap in points (the held-out
  check of issue 11 asks for ≥ 20). The advantage is the arm's own filter input, so its V is
  under the policy the arm's config names: the current one (binary_rl, critic_first), where a
  right critic under a nearly greedy policy approves almost nothing (V ≈ Q of the best
  action), or the stage-1 policy (quorum's ``advantage_policy = 'initial'``);
* ``approval_best`` / ``approval_other``: approval when the data action is the best one, and
  when it is not;
* ``tabular_best`` (:func:`tabular_best_rate`, on the training data): whether the data identify
  the best actions at all;
* ``value``: the policy's expected one-step reward ``Σ_a π(a|s_t) R[c_t, a]`` normalised as
  ``(value − uniform) / (best − uniform)``, averaged over the held-out steps (1 is the best
  policy, 0 uniformly random); ``value_greedy`` the same for argmax π; and, for reference, the
  logged player's own normalised value ``data_value`` (what imitation can reach).

    python benchmarks/synthetic_offline_rl.py                       # dense and terminal, 1,000 episodes
    python benchmarks/synthetic_offline_rl.py --reward terminal --episodes 1000 5000 20000
    python benchmarks/synthetic_offline_rl.py --smoke               # seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gin
import gymnasium as gym
import numpy as np
import torch

from metamon.amago.agent import Agent
from metamon.amago.checkpoints import save_weights
from metamon.amago.cli_utils import use_config
from metamon.amago.loading import RLData, RLData_pad_collate, RLDataset
from metamon.amago.nets.traj_encoders import TformerTrajEncoder
from metamon.amago.nets.tstep_encoders import FFTstepEncoder
from metamon.rl import TRAINING_CONFIG_DIR
from metamon.rl.experiment import MetamonAMAGOExperiment

# arm -> its training gin files, one stage each; a second stage starts from the first's weights
# and takes the last --stage2_updates of the arm's --updates (the battles of docs/results.md: 3,000 + 1,000)
ARMS = {
    "il": ["il.gin"],
    "binary_rl": ["binary_rl.gin"],
    "exp_rl": ["exp_rl.gin"],
    "critic_first": ["critic_first.gin"],
    "quorum": ["critic_first.gin", "critic_first_onestep_quorum.gin"],
}
# small nets: the task needs a lookup table, not capacity (all gin-overridable with --gin_bindings)
NETS = {
    "FFTstepEncoder.n_layers": 1,
    "FFTstepEncoder.d_hidden": 64,
    "FFTstepEncoder.d_output": 32,
    "FFTstepEncoder.normalize_inputs": False,
    "TformerTrajEncoder.d_model": 32,
    "TformerTrajEncoder.n_heads": 2,
    "TformerTrajEncoder.d_ff": 64,
    "TformerTrajEncoder.n_layers": 1,
}


# ---------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------
@dataclass
class ChainTask:
    """The contextual chain of the module docstring; ``reward_table`` is R (K, A)."""

    reward_table: np.ndarray
    steps: int
    demo_error: float
    epsilon: float
    reward: str = "dense"
    noise: float = 0.5
    observe_score: bool = False

    def __post_init__(self):
        if self.reward not in ("dense", "terminal"):
            raise ValueError(f"ChainTask.reward must be 'dense' or 'terminal', got {self.reward!r}")

    @classmethod
    def make(cls, contexts: int, actions: int, seed: int, **kwargs) -> "ChainTask":
        rng = np.random.default_rng(seed)
        table = rng.uniform(0.0, 0.5, size=(contexts, actions))
        table[np.arange(contexts), rng.integers(actions, size=contexts)] = 1.0
        return cls(table, **kwargs)

    @property
    def best(self) -> np.ndarray:
        return self.reward_table.argmax(axis=1)

    def logged_policy(self) -> np.ndarray:
        """π_data(a | c) (K, A): ε uniform + (1 − ε) · [(1 − d) on the best, d spread on the rest]."""
        K, A = self.reward_table.shape
        demo = np.full((K, A), self.demo_error / (A - 1))
        demo[np.arange(K), self.best] = 1.0 - self.demo_error
        return self.epsilon / A + (1.0 - self.epsilon) * demo

    def normalised_value(self, probs: np.ndarray, contexts: np.ndarray) -> float:
        """Mean over steps of (Σ_a π(a|s) R[c, a] − mean_a R[c, a]) / (max_a R[c, a] − mean_a R[c, a])."""
        R = self.reward_table[contexts]
        uniform, best = R.mean(axis=1), R.max(axis=1)
        return float(np.mean(((probs * R).sum(axis=1) - uniform) / (best - uniform)))

    def episodes(self, n: int, rng: np.random.Generator) -> list[dict]:
        """``n`` logged episodes: contexts (T+1,), actions (T,), random (T,) bool, rewards (T,)."""
        K, A = self.reward_table.shape
        T = self.steps
        out = []
        for _ in range(n):
            contexts = rng.integers(K, size=T + 1)
            best = self.best[contexts[:T]]
            other = (best + rng.integers(1, A, size=T)) % A  # uniform over the A − 1 others
            demo = np.where(rng.random(T) < self.demo_error, other, best)
            random = rng.random(T) < self.epsilon
            actions = np.where(random, rng.integers(A, size=T), demo)
            step_rewards = self.reward_table[contexts[:T], actions]
            if self.reward == "dense":
                rewards = step_rewards + self.noise * rng.standard_normal(T)
            else:
                rewards = np.zeros(T)
                rewards[-1] = 1.0 if rng.random() < step_rewards.mean() else -1.0
            out.append({"contexts": contexts, "actions": actions, "random": random, "rewards": rewards})
        return out

    @property
    def obs_space(self) -> gym.spaces.Dict:
        K = self.reward_table.shape[0]
        entries = {"context": gym.spaces.Box(0.0, 1.0, (K,), dtype=np.float32)}
        if self.observe_score:
            entries["score"] = gym.spaces.Box(0.0, 1.0, (1,), dtype=np.float32)
        return gym.spaces.Dict(entries)

    def observations(self, episode: dict) -> dict:
        """{"context": one-hot (T+1, K)} and, with ``observe_score``, {"score": (T+1, 1)}, the
        score so far S_t = (1/T) Σ_{k<t} R[c_k, a_k] (the win probability's part already
        decided, as a battle's hit points show the damage so far)."""
        K = self.reward_table.shape[0]
        obs = {"context": np.eye(K, dtype=np.float32)[episode["contexts"]]}
        if self.observe_score:
            step = self.reward_table[episode["contexts"][:-1], episode["actions"]] / len(episode["actions"])
            obs["score"] = np.concatenate([[0.0], np.cumsum(step)]).astype(np.float32)[:, None]
        return obs

    def to_rldata(self, episode: dict) -> RLData:
        A = self.reward_table.shape[1]
        T = len(episode["actions"])
        dones = np.zeros((T, 1), dtype=bool)
        dones[-1] = True
        return RLData(
            obs=self.observations(episode),
            rews=episode["rewards"].astype(np.float32)[:, None],
            dones=dones,
            actions=np.eye(A, dtype=np.float32)[episode["actions"]],
            time_idxs=np.arange(T + 1, dtype=np.int64)[:, None],
        )


def tabular_visits_needed(task: ChainTask, z: float = 2.0) -> float:
    """Visits per (context, action) pair a Monte-Carlo mean needs to tell the best action from
    the runner-up at ``z`` standard errors: (z σ / Δ)², with the terminal task's Δ = 2 gap / T
    (gap: the smallest best − runner-up difference of R, at t = T − 1) and σ = 1, or the dense
    task's Δ = gap and σ = the noise."""
    top2 = np.sort(task.reward_table, axis=1)[:, -2:]
    gap = float((top2[:, 1] - top2[:, 0]).min())
    if task.reward == "dense":
        return (z * task.noise / gap) ** 2
    return (z * task.steps / (2.0 * gap)) ** 2


def tabular_best_rate(task: ChainTask, episodes: list[dict]) -> float:
    """The share of contexts whose best action a tabular Monte-Carlo estimate finds: argmax_a of
    the mean undiscounted return-to-go G_t = Σ_{k ≥ t} r_k over the training steps with
    (c_t, a_t) = (c, a) (an action never taken in c scores −inf). It says whether the data
    identify the best actions, whatever a critic makes of them."""
    K, A = task.reward_table.shape
    sums, counts = np.zeros((K, A)), np.zeros((K, A))
    for e in episodes:
        returns = np.cumsum(e["rewards"][::-1])[::-1]
        np.add.at(sums, (e["contexts"][:-1], e["actions"]), returns)
        np.add.at(counts, (e["contexts"][:-1], e["actions"]), 1)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)
    return float(np.mean(means.argmax(axis=1) == task.best))


class ChainDataset(RLDataset):
    """A fixed list of logged episodes; every item is a uniformly drawn episode (whole, or a
    random window when longer than ``max_seq_len``)."""

    def __init__(self, task: ChainTask, episodes: list[dict]):
        super().__init__("chain")
        self.items = [task.to_rldata(e) for e in episodes]

    def sample_random_trajectory(self) -> RLData:
        return self.items[np.random.randint(len(self.items))]


# ---------------------------------------------------------------------------------------------
# Training and held-out measures
# ---------------------------------------------------------------------------------------------
def train(task: ChainTask, episodes: list[dict], train_config: str, args, run_dir: Path,
          updates: int | None = None, init_weights: Path | None = None) -> torch.nn.Module:
    """One run of ``train_config`` (a file in metamon/configs/training/) on ``episodes``:
    ``updates`` optimizer updates (default ``args.updates``), from ``init_weights`` if given."""
    updates = args.updates if updates is None else updates
    gin.clear_config()
    bindings = [
        f"MetamonAMAGOExperiment.learning_rate = {args.lr}",
        f"MetamonAMAGOExperiment.lr_warmup_steps = {args.warmup}",
        *args.gin_bindings,
    ]
    use_config(NETS, [TRAINING_CONFIG_DIR / train_config], finalize=False, bindings=bindings)
    A = task.reward_table.shape[1]
    experiment = MetamonAMAGOExperiment(
        run_name=Path(train_config).stem, ckpt_base_dir=str(run_dir), max_seq_len=args.max_seq_len,
        dataset=ChainDataset(task, episodes), tstep_encoder_type=FFTstepEncoder,
        traj_encoder_type=TformerTrajEncoder, agent_type=Agent,
        obs_space=task.obs_space,
        action_space=gym.spaces.Discrete(A), epochs=1, train_batches_per_epoch=updates,
        batch_size=args.batch_size, dloader_workers=0, ckpt_interval=None, always_save_latest=False,
        log_interval=updates, verbose=False, seed=args.seed,
    )
    experiment.start()
    if init_weights is not None:
        experiment.load_policy_weights(init_weights)
    experiment.learn()
    return experiment.policy


def train_arm(task: ChainTask, episodes: list[dict], label: str, args, run_dir: Path) -> torch.nn.Module:
    """The arm's stages in turn, the same total ``args.updates`` for every arm."""
    configs = ARMS[label]
    if len(configs) == 1:
        return train(task, episodes, configs[0], args, run_dir)
    stage1 = train(task, episodes, configs[0], args, run_dir, updates=args.updates - args.stage2_updates)
    weights = save_weights(stage1, run_dir / f"{label}_stage1.safetensors")
    return train(task, episodes, configs[1], args, run_dir, updates=args.stage2_updates, init_weights=weights)


@torch.no_grad()
def heldout_measures(agent: torch.nn.Module, task: ChainTask, episodes: list[dict]) -> dict:
    """The module docstring's measures on ``episodes`` (every step counted, the last γ head)."""
    agent.eval()
    batch = RLData_pad_collate([task.to_rldata(e) for e in episodes])
    steps = agent(batch, log_step=True).steps
    contexts = np.concatenate([e["contexts"][:-1] for e in episodes])
    actions = np.concatenate([e["actions"] for e in episodes])
    random = np.concatenate([e["random"] for e in episodes])
    if not np.array_equal(steps.action.numpy(), actions):
        raise AssertionError("held-out steps are not in episode order")
    probs = steps.probs[:, -1].numpy()  # (steps, A), the test-time head
    best = task.best[contexts]
    out = {
        "value": task.normalised_value(probs, contexts),
        "value_greedy": task.normalised_value(np.eye(probs.shape[1])[probs.argmax(axis=1)], contexts),
        "entropy": float(steps.entropy[:, -1].mean()),
    }
    if steps.adv is not None:
        approved = (steps.adv[:, -1] > 0).numpy()
        right = steps.critic_argmax[:, -1].numpy() == best
        position = np.concatenate([np.arange(len(e["actions"])) for e in episodes])
        quarter = 4 * position // len(episodes[0]["actions"])
        out.update(
            critic_best=float(right.mean()),
            critic_best_by_quarter=[float(right[quarter == q].mean()) for q in range(4)],
            approval_random=float(approved[random].mean()),
            approval_demo=float(approved[~random].mean()),
            approval_best=float(approved[actions == best].mean()),
            approval_other=float(approved[actions != best].mean()),
        )
        out["gap_points"] = 100.0 * (out["approval_demo"] - out["approval_random"])
    return out


def run(args) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for reward in args.reward:
            task = ChainTask.make(args.contexts, args.actions, args.task_seed, steps=args.steps,
                                  demo_error=args.demo_error, epsilon=args.epsilon, reward=reward, noise=args.noise,
                                  observe_score=args.observe_score)
            heldout = task.episodes(args.heldout, np.random.default_rng(args.task_seed + 1))
            data_value = task.normalised_value(task.logged_policy(), np.arange(args.contexts))
            for n in args.episodes:
                episodes = task.episodes(n, np.random.default_rng(args.seed))
                visits = n * args.steps / (args.contexts * args.actions)
                for label in args.arms:
                    start = time.perf_counter()
                    agent = train_arm(task, episodes, label, args, Path(tmp) / f"{reward}_{n}_{label}")
                    row = {"reward": reward, "observe_score": args.observe_score, "episodes": n, "arm": label,
                           "updates": args.updates, "steps": args.steps, "actions": args.actions,
                           "noise": args.noise, "gin_bindings": args.gin_bindings,
                           "seconds": time.perf_counter() - start, "data_value": data_value,
                           "visits_per_pair": visits, "visits_needed": tabular_visits_needed(task),
                           "tabular_best": tabular_best_rate(task, episodes),
                           **heldout_measures(agent, task, heldout)}
                    results.append(row)
                    print(_format_row(row), flush=True)
    return results


def plot(runs: dict[str, list[dict]], path: Path) -> None:
    """Two panels over the conditions (a label of ``runs`` × training episodes), one bar per arm:
    the critic's best-action rate (dashed: chance 1/A; crosses: the tabular count's rate) and
    the policy's normalised value (crosses: the logged player's, what imitation reaches)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = {(label, row["episodes"], row["arm"]): row for label, rows in runs.items() for row in rows}
    conditions = list(dict.fromkeys((label, episodes) for label, episodes, _ in cells))
    arms = list(dict.fromkeys(arm for _, _, arm in cells))
    width = 0.8 / len(arms)
    fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 1.8 * len(conditions)), 7.5), sharex=True)
    for i, arm in enumerate(arms):
        for ax, key in zip(axes, ("critic_best", "value")):
            points = [(j + (i - (len(arms) - 1) / 2) * width, cells[(*cond, arm)][key])
                      for j, cond in enumerate(conditions) if key in cells.get((*cond, arm), {})]
            if points:
                ax.bar(*zip(*points), width, label=arm, color=f"C{i}")
    for j, cond in enumerate(conditions):
        row = next(r for (label, episodes, _), r in cells.items() if (label, episodes) == cond)
        axes[0].plot([j - 0.4, j + 0.4], [1.0 / row["actions"]] * 2, "k--", lw=1)
        axes[0].plot(j, row["tabular_best"], "kx", ms=9)
        axes[1].plot(j, row["data_value"], "kx", ms=9)
    axes[0].set_ylabel("critic argmax = best action")
    axes[1].set_ylabel("policy value (0 uniform, 1 best)")
    axes[0].set_title("dashed: chance; x: tabular Monte-Carlo count on the same data")
    axes[1].set_title("x: the logged player's value (what imitation reaches)")
    axes[1].set_xticks(range(len(conditions)), [f"{label}\n{episodes} ep" for label, episodes in conditions])
    axes[1].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _format_row(row: dict) -> str:
    text = (f"{row['reward']:8s} {row['episodes']:6d} ep  {row['arm']:12s} value {row['value']:+.2f} "
            f"(greedy {row['value_greedy']:+.2f}, data {row['data_value']:+.2f})  entropy {row['entropy']:.2f}  "
            f"tabular best {row['tabular_best']:.2f}")
    if "critic_best" in row:
        quarters = "/".join(f"{x:.2f}" for x in row["critic_best_by_quarter"])
        text += (f"  critic best {row['critic_best']:.2f} ({quarters})  approval random/demo "
                 f"{row['approval_random']:.2f}/{row['approval_demo']:.2f} (gap {row['gap_points']:+.1f})  best/other "
                 f"{row['approval_best']:.2f}/{row['approval_other']:.2f}")
    return text + f"  [{row['seconds']:.0f} s]"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reward", nargs="+", choices=["dense", "terminal"], default=["dense", "terminal"])
    p.add_argument("--episodes", type=int, nargs="+", default=[1000], help="training episodes (one run each)")
    p.add_argument("--arms", nargs="+", choices=sorted(ARMS), default=["il", "binary_rl", "critic_first", "quorum"])
    p.add_argument("--contexts", type=int, default=8)
    p.add_argument("--actions", type=int, default=6)
    p.add_argument("--steps", type=int, default=24, help="decisions per episode (T)")
    p.add_argument("--demo_error", type=float, default=0.2)
    p.add_argument("--epsilon", type=float, default=0.5)
    p.add_argument("--noise", type=float, default=0.5, help="dense: reward noise σ")
    p.add_argument("--observe_score", action="store_true", help="observe the score so far (module docstring)")
    p.add_argument("--heldout", type=int, default=200, help="held-out episodes")
    p.add_argument("--updates", type=int, default=1500, help="optimizer updates per arm, all stages together")
    p.add_argument("--stage2_updates", type=int, default=500, help="two-stage arms: the second stage's share")
    p.add_argument("--batch_size", type=int, default=12)
    p.add_argument("--max_seq_len", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--gin_bindings", action="append", default=[])
    p.add_argument("--task_seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0, help="data draw and training seed")
    p.add_argument("--json_out", type=Path, default=None)
    p.add_argument("--plot", type=Path, default=None, metavar="PNG", help="plot the rows (see plot())")
    p.add_argument("--from_json", nargs="+", default=None, metavar="LABEL=FILE",
                   help="plot the rows of earlier --json_out files instead of training (needs --plot)")
    p.add_argument("--smoke", action="store_true", help="100 episodes, 30 updates, 20 held out")
    args = p.parse_args(argv)
    if args.smoke:
        args.episodes, args.updates, args.stage2_updates, args.heldout = [100], 30, 10, 20
    if not 0 < args.stage2_updates < args.updates:
        p.error(f"--stage2_updates {args.stage2_updates} must be between 0 and --updates {args.updates}")
    if args.max_seq_len < args.steps + 1:
        p.error(f"--max_seq_len {args.max_seq_len} must hold a whole episode (--steps + 1 = {args.steps + 1})")
    if args.from_json is not None:
        if args.plot is None:
            p.error("--from_json needs --plot")
        runs = {}
        for spec in args.from_json:
            label, sep, file = spec.partition("=")
            if not sep or not label or label in runs:
                p.error(f"--from_json {spec!r}: expected a new LABEL=FILE")
            runs[label] = json.loads(Path(file).read_text())
        plot(runs, args.plot)
        return 0
    torch.set_num_threads(1)
    results = run(args)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(results, indent=1))
    if args.plot is not None:
        plot({f"{r}{' +score' if args.observe_score else ''}": [x for x in results if x["reward"] == r]
              for r in args.reward}, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
