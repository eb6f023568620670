"""A tiny synthetic imitation-learning run of `metamon.amago.experiment.Experiment`.

Imported by tests/unit/amago/test_amago_experiment.py and run as a script (subprocess, or
``accelerate launch``) by the resume and distributed tests:

    python _amago_tiny_run.py --base_dir D --run_name R [--kill_at_update N] [--resume] --out PREFIX

Each process writes PREFIX.rank{i}.safetensors (final Agent weights) and PREFIX.rank{i}.json
({"rank", "num_processes", "grad_update_counter"}).

Task: obs {"x": (T, 3) float}, actions Discrete(4), a_t = argmax(x_t) (action 3 never used),
rewards 0/1 for "correct", short trajectories of random length 2..9 (numpy global RNG, so a
checkpoint's RNG restore covers the draws with dloader_workers=0).
"""

import argparse
import json
import os
import signal
import sys

import gin
import gymnasium as gym
import numpy as np
import torch

from metamon.amago.agent import Agent
from metamon.amago.checkpoints import save_weights
from metamon.amago.cli_utils import use_config
from metamon.amago.experiment import Experiment
from metamon.amago.loading import RLData, RLDataset
from metamon.amago.nets.traj_encoders import TformerTrajEncoder
from metamon.amago.nets.tstep_encoders import FFTstepEncoder

N_ACTIONS = 4
OBS_SPACE = gym.spaces.Dict({"x": gym.spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)})

TINY_IL = {
    "FFTstepEncoder.n_layers": 1,
    "FFTstepEncoder.d_hidden": 16,
    "FFTstepEncoder.d_output": 16,
    "TformerTrajEncoder.d_model": 16,
    "TformerTrajEncoder.n_heads": 2,
    "TformerTrajEncoder.d_ff": 32,
    "TformerTrajEncoder.n_layers": 1,
    "Actor.d_hidden": 16,
    "NCritics.d_hidden": 16,
    "Agent.fake_filter": True,
    "Agent.online_coeff": 0.0,
    "Agent.offline_coeff": 1.0,
    "Agent.use_multigamma": False,
}


class ArgmaxDataset(RLDataset):
    """Trajectories where the demonstrated action is argmax of the 3 observed features."""

    def sample_random_trajectory(self) -> RLData:
        T = int(np.random.randint(2, 10))
        x = np.random.randn(T, 3).astype(np.float32)
        acts = x[:-1].argmax(-1)
        return RLData(
            obs={"x": torch.from_numpy(x)},
            rews=torch.ones(T - 1, 1),
            dones=torch.zeros(T - 1, 1, dtype=torch.bool),
            actions=torch.nn.functional.one_hot(torch.from_numpy(acts), N_ACTIONS).float(),
            time_idxs=torch.arange(T).unsqueeze(-1),
        )

    def get_description(self) -> str:
        return "argmax"


def configure(extra: dict | None = None) -> None:
    """Fresh gin config with the tiny IL bindings (+ ``extra``), not finalized."""
    gin.clear_config()
    use_config({**TINY_IL, **(extra or {})}, None, finalize=False)


def make_experiment(base_dir, run_name="run", **overrides) -> Experiment:
    kwargs = dict(
        run_name=run_name,
        ckpt_base_dir=str(base_dir),
        max_seq_len=8,
        dataset=ArgmaxDataset(),
        tstep_encoder_type=FFTstepEncoder,
        traj_encoder_type=TformerTrajEncoder,
        agent_type=Agent,
        obs_space=OBS_SPACE,
        action_space=gym.spaces.Discrete(N_ACTIONS),
        epochs=4,
        train_batches_per_epoch=4,
        batch_size=4,
        dloader_workers=0,
        learning_rate=3e-3,
        lr_warmup_steps=2,
        ckpt_interval=1,
        log_interval=1,
        verbose=False,
        seed=0,
    )
    kwargs.update(overrides)
    return Experiment(**kwargs)


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--base_dir", required=True)
    p.add_argument("--run_name", default="run")
    p.add_argument("--kill_at_update", type=int, default=None, help="SIGKILL self after this update")
    p.add_argument("--resume", action="store_true", help="resume from the latest complete checkpoint")
    p.add_argument("--out", required=True, help="prefix: writes {out}.rank{i}.safetensors (final weights) and .json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    configure()
    exp = make_experiment(args.base_dir, args.run_name)
    exp.start()
    if args.resume:
        exp.load_checkpoint(max(exp.available_epochs()))
    if args.kill_at_update is not None:
        train_step = exp.train_step

        def train_step_then_maybe_die(batch, log_step):
            out = train_step(batch, log_step)
            if exp.grad_update_counter == args.kill_at_update:
                os.kill(os.getpid(), signal.SIGKILL)
            return out

        exp.train_step = train_step_then_maybe_die
    exp.learn()
    rank = exp.accelerator.process_index
    save_weights(exp.policy, f"{args.out}.rank{rank}.safetensors")
    info = {"rank": rank, "num_processes": exp.accelerator.num_processes,
            "grad_update_counter": exp.grad_update_counter}
    with open(f"{args.out}.rank{rank}.json", "w") as f:
        json.dump(info, f)
    exp.accelerator.end_training()


if __name__ == "__main__":
    main(sys.argv[1:])
