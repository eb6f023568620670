"""Training throughput: timesteps/s of the data path and of one optimizer update.

Builds the experiment exactly as ``python -m metamon.rl.train`` does (same flags for the model,
training config, data and batch size), then times separately

* data: ``batch`` windows sampled from the parsed-replay files and padded into a batch;
* update: forward + backward + optimizer step of the agent on one such batch (``train_step``).

Prints timesteps/s for both (timesteps = B x (L - 1) transitions per batch) and the parameter
count. Example::

    python benchmarks/train_throughput.py --parsed_replay_dir data/demo --formats gen1ou \\
        --model_gin_config tiny_agent.gin --batch_size 32
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from metamon.amago.loading import RLData_pad_collate
from metamon.rl.train import TrainConfig, build_experiment


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parsed_replay_dir", required=True)
    p.add_argument("--formats", nargs="+", required=True)
    p.add_argument("--model_gin_config", default="tiny_agent.gin")
    p.add_argument("--train_gin_config", default="il.gin")
    p.add_argument("--gin_bindings", action="append", default=[])
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as save_dir:
        config = TrainConfig(
            run_name="throughput", save_dir=save_dir, model_gin_config=args.model_gin_config,
            train_gin_config=args.train_gin_config, gin_bindings=args.gin_bindings,
            parsed_replay_dir=args.parsed_replay_dir, formats=args.formats, batch_size_per_gpu=args.batch_size,
            dloader_workers=0, epochs=1, steps_per_epoch=1, eval_gens=(),
        )
        experiment = build_experiment(config)
        experiment.verbose = False
        experiment.start()
        dataset, policy = experiment.dataset, experiment.policy

        data_s, update_s, timesteps = [], [], []
        for _ in range(args.repeats + 1):  # the first round warms up
            start = time.perf_counter()
            batch = RLData_pad_collate([dataset[i] for i in range(args.batch_size)])
            data_s.append(time.perf_counter() - start)
            timesteps.append(batch.actions.shape[0] * batch.actions.shape[1])
            policy.train()
            start = time.perf_counter()
            experiment.train_step(batch.to(experiment.accelerator.device), log_step=False)
            update_s.append(time.perf_counter() - start)
        data_s, update_s, timesteps = data_s[1:], update_s[1:], timesteps[1:]

    n_params = sum(p.numel() for p in policy.parameters())
    per_batch = statistics.mean(timesteps)
    print(f"model {args.model_gin_config} ({n_params:,} params), batch {args.batch_size}, "
          f"{per_batch:.0f} timesteps per batch (incl. padding), torch threads {torch.get_num_threads()}")
    for label, seconds in (("data:  ", data_s), ("update:", update_s)):
        median = statistics.median(seconds)
        print(f"{label} {median:.3f} s/batch -> {per_batch / median:,.0f} timesteps/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
