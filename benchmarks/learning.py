"""Does the training core learn? Imitation (il.gin) and offline RL (binary_rl.gin) on CPU.

Steps (each one is the user-facing command, printed before it runs):

1. ``python -m metamon.data.generate``: ``--battles`` heuristic-vs-heuristic battles (default
   GymLeader vs GymLeader in gen1ou with the builtin teams), both perspectives recorded. Skipped
   when the data folder already holds enough files.
2. ``python -m metamon.rl.train`` with ``--model_gin_config`` (default ``tiny_agent.gin``) and
   ``il.gin``, then again with ``binary_rl.gin``.
3. ``python -m metamon.rl.evaluate`` of each run's last checkpoint against ``RandomBaseline`` and
   the demonstrator, ``--eval_battles`` battles each (win rate with a 95% Wilson interval).

Targets (issue 4): IL >= 95% vs RandomBaseline and >= 45% vs the demonstrator over >= 200
battles. Prints a table and writes it as JSON to ``OUT/learning.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str]) -> float:
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    start = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)
    return time.monotonic() - start


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.glob("*.json*")) if folder.is_dir() else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/learning_benchmark")
    p.add_argument("--data", default=None, help="data root (default: OUT/data)")
    p.add_argument("--demonstrator", default="GymLeader")
    p.add_argument("--battle_format", default="gen1ou")
    p.add_argument("--battles", type=int, default=2000, help="battles to generate (two files each)")
    p.add_argument("--model_gin_config", default="tiny_agent.gin")
    p.add_argument("--train_configs", nargs="+", default=["il.gin", "binary_rl.gin"])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--steps_per_epoch", type=int, default=500)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--dloader_workers", type=int, default=1)
    p.add_argument("--eval_battles", type=int, default=200)
    p.add_argument("--greedy", action="store_true", help="evaluate with the argmax action instead of sampling")
    p.add_argument("--gin_bindings", action="append", default=[])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    py = sys.executable
    out = Path(args.out)
    data = Path(args.data) if args.data else out / "data"
    rows, timings = [], {}

    have = count_files(data / args.battle_format)
    if have < 2 * args.battles:
        timings["generate_s"] = run([
            py, "-m", "metamon.data.generate", "--player", args.demonstrator, "--opponent", args.demonstrator,
            "--battle_format", args.battle_format, "--num_battles", str(args.battles - have // 2),
            "--team_set", "builtin", "--output_dir", str(data), "--concurrent", "8", "--seed", str(args.seed),
        ])
    print(f"data: {count_files(data / args.battle_format)} files in {data / args.battle_format}")

    for train_gin in args.train_configs:
        run_name = f"{Path(args.model_gin_config).stem}_{Path(train_gin).stem}_s{args.seed}"
        cmd = [
            py, "-m", "metamon.rl.train", "--run_name", run_name, "--save_dir", str(out / "runs"),
            "--model_gin_config", args.model_gin_config, "--train_gin_config", train_gin,
            "--parsed_replay_dir", str(data), "--formats", args.battle_format,
            "--epochs", str(args.epochs), "--steps_per_epoch", str(args.steps_per_epoch),
            "--batch_size_per_gpu", str(args.batch_size), "--dloader_workers", str(args.dloader_workers),
            "--ckpt_interval", str(args.epochs), "--log_interval", "100", "--eval_gens", "--seed", str(args.seed),
        ]
        for binding in args.gin_bindings:
            cmd += ["--gin_bindings", binding]
        timings[f"train_{run_name}_s"] = run(cmd)
        table = out / f"eval_{run_name}.json"
        timings[f"eval_{run_name}_s"] = run([
            py, "-m", "metamon.rl.evaluate", "--run_name", run_name, "--ckpt_dir", str(out / "runs"),
            "--formats", args.battle_format, "--opponents", "RandomBaseline", args.demonstrator,
            "--battles", str(args.eval_battles), "--json_out", str(table), "--seed", str(args.seed),
            *(["--greedy"] if args.greedy else []),
        ])
        for row in json.loads(table.read_text())["rows"]:
            rows.append({"run": run_name, **row})

    print("\nrun | opponent | win rate [95% CI] | valid actions | battles")
    for r in rows:
        print(
            f"{r['run']} | {r['opponent']} | {r['win_rate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            f" | {r['valid_actions']:.3f} | {r['finished']}"
        )
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.0f}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "learning.json").write_text(json.dumps({"rows": rows, "timings_s": timings, "args": vars(args)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
