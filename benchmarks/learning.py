"""Does the training core learn, and does offline RL improve on its data? IL vs RL on CPU.

Steps (each one is the user-facing command, printed before it runs):

1. ``python -m metamon.data.generate``: the training data.
   * default: ``--battles`` demonstrator-vs-demonstrator battles (GymLeader mirror in gen1ou with
     the builtin teams), both perspectives recorded, in ``DATA/``;
   * ``--mixed``: mixed-quality data, ``DATA/mirror`` (the demonstrator mirror) and ``DATA/eps``
     (``eps:EPSILON:GymLeader`` vs GymLeader: a GymLeader that plays a random legal order with
     probability ``--epsilon``), mixed per trajectory with weight ``--mix_weight`` on ``eps``
     (``train --custom_replay_dir``), plus a held-out set ``DATA/heldout``
     (RandomBaseline vs GymLeader and a GymLeader mirror, ``--heldout_battles`` each, another seed);
   * ``--mixed --eps_side_only``: train on the eps player's own trajectories only
     (``DATA/eps_side``: hard links to its side of ``DATA/eps``). Its data policy is then the
     demonstrator's action with probability 1 − ε and a random legal order otherwise at every step
     (D4RL's "medium" setting). The plain mix records the eps battles from both sides and mixes them
     with the mirror, so only about ε/4 of its actions are random: IL on it is barely worse than
     the demonstrator's clone, and no filter could separate from IL at 200 battles.
   A folder that already holds enough files is not generated again; a run whose last
   checkpoint exists is not trained again, and an evaluation already written is not replayed.
2. ``python -m metamon.rl.train`` with ``--model_gin_config`` (default ``tiny_agent.gin``) and
   each ``--train_configs`` entry, all with the same budget and seed. An entry is a gin file
   (the run is named after it) or ``LABEL=GIN`` (named LABEL); ``--run_bindings LABEL "X.y = z"``
   adds bindings to one run only (e.g. the same recipe with and without the detached critic), and
   ``--run_init LABEL SPEC`` starts one run from a checkpoint (``train --init_from_checkpoint
   SPEC``, e.g. ``run:DIR@EPOCH``: a critic pre-trained by another run, then filtered).
3. ``python -m metamon.rl.evaluate`` of each run's last checkpoint against ``RandomBaseline`` and
   the demonstrator, ``--eval_battles`` sampled-action battles each (win rate, 95 % Wilson interval).
4. Learning curves of the diagnostics (``OUT/plots/*.png``, from each run's ``logs/metrics.csv``)
   and, with held-out data, the held-out checks of every run (``learning_report.heldout_report``).

Targets. Demonstrator-only data (issue 4): IL >= 95 % vs RandomBaseline and >= 45 % vs the
demonstrator over >= 200 battles; RL no worse than IL − 5 points vs the demonstrator. Mixed data
(issue 11): an RL run beats IL vs GymLeader with non-overlapping 95 % intervals and is within 5
points of IL (or better) vs RandomBaseline; held out, the random player's actions are approved at
least 20 points less than the demonstrator's, no slot with >= 5 % of the steps is approved < 10 %
or > 90 % of the time, and RL keeps more than half of IL's entropy. Prints a table and writes
``OUT/learning.json`` (rows, verdicts, held-out reports, plots, timings, arguments).
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

from learning_report import heldout_report, plot_diagnostics

from metamon.data.trajectory_file import parse_trajectory_filename
from metamon.server import unique_username

ROOT = Path(__file__).resolve().parents[1]
MIXED_CONFIGS = ["il.gin", "binary_rl.gin", "binary_rl_warmup.gin", "exp_rl.gin", "exp_rl_gentle.gin"]


def run(cmd: list[str]) -> float:
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    start = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env)
    return time.monotonic() - start


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.glob("*.json*")) if folder.is_dir() else 0


def generate(py: str, root: Path, player: str, opponent: str, battles: int, fmt: str, seed: int,
             concurrent: int) -> float:
    """Generate battles into ``root`` until it holds 2·battles files; seconds spent (0 if none)."""
    have = count_files(root / fmt)
    if have >= 2 * battles:
        return 0.0
    return run([
        py, "-m", "metamon.data.generate", "--player", player, "--opponent", opponent,
        "--battle_format", fmt, "--num_battles", str(battles - have // 2), "--team_set", "builtin",
        "--output_dir", str(root), "--concurrent", str(concurrent), "--seed", str(seed),
    ])


def link_learner_side(source: Path, dest: Path, fmt: str, demonstrator: str) -> Path:
    """Hard-link into ``dest/fmt`` the files of ``source/fmt`` recorded from the side that is not
    the demonstrator's (its usernames start with the demonstrator's 8-character prefix, see
    :func:`metamon.server.unique_username`); ``dest``. Refuses a source with no such file."""
    prefix = unique_username(demonstrator)[:-10]
    (dest / fmt).mkdir(parents=True, exist_ok=True)
    linked = 0
    for path in sorted((source / fmt).glob("*.json*")):
        if parse_trajectory_filename(path.name).player.startswith(prefix):
            continue
        target = dest / fmt / path.name
        if not target.exists():
            os.link(path, target)
        linked += 1
    if not linked:
        raise SystemExit(f"error: no file in {source / fmt} is recorded from a side other than {demonstrator}'s")
    return dest


def parse_train_configs(entries: list[str]) -> list[tuple[str, str]]:
    """``["il.gin", "warm_shared=binary_rl_warmup.gin"]`` -> ``[("il", "il.gin"), ("warm_shared", ...)]``."""
    out = []
    for entry in entries:
        label, sep, gin_file = entry.partition("=")
        out.append((label, gin_file) if sep else (Path(entry).stem, entry))
    labels = [label for label, _ in out]
    if len(set(labels)) != len(labels):
        raise SystemExit(f"error: --train_configs labels must be distinct, got {labels}")
    return out


def verdicts(rows: list[dict], demonstrator: str) -> dict:
    """Each non-IL run against the IL run: vs the demonstrator, does its Wilson interval lie
    above IL's (``beats_il_non_overlapping``) and is it no worse than IL − 5 points
    (``no_collapse``); vs RandomBaseline, is it within 5 points of IL or better."""
    table = {(r["label"], r["opponent"]): r for r in rows}
    labels = sorted({r["label"] for r in rows})
    if "il" not in labels:
        return {}
    out = {}
    for label in labels:
        if label == "il":
            continue
        v = {}
        rl, il = table.get((label, demonstrator)), table.get(("il", demonstrator))
        if rl and il:
            v["beats_il_non_overlapping"] = rl["ci_low"] > il["ci_high"]
            v["no_collapse"] = rl["win_rate"] >= il["win_rate"] - 0.05
        rl, il = table.get((label, "RandomBaseline")), table.get(("il", "RandomBaseline"))
        if rl and il:
            v["within_5_points_vs_random"] = rl["win_rate"] >= il["win_rate"] - 0.05
        out[label] = v
    return out


def train_command(py: str, args: argparse.Namespace, label: str, train_gin: str, run_name: str, out: Path,
                  data_flags: list[str]) -> list[str]:
    """The ``metamon.rl.train`` command of one run: the shared budget and bindings plus its own
    ``--run_bindings`` and ``--run_init``."""
    cmd = [
        py, "-m", "metamon.rl.train", "--run_name", run_name, "--save_dir", str(out / "runs"),
        "--model_gin_config", args.model_gin_config, "--train_gin_config", train_gin,
        *data_flags, "--formats", args.battle_format,
        "--epochs", str(args.epochs), "--steps_per_epoch", str(args.steps_per_epoch),
        "--batch_size_per_gpu", str(args.batch_size), "--dloader_workers", str(args.dloader_workers),
        "--ckpt_interval", str(args.epochs), "--log_interval", str(args.log_interval), "--eval_gens",
        "--seed", str(args.seed),
    ]
    for binding in args.gin_bindings + [b for run_label, b in args.run_bindings if run_label == label]:
        cmd += ["--gin_bindings", binding]
    for run_label, spec in args.run_init:
        if run_label == label:
            cmd += ["--init_from_checkpoint", spec]
    return cmd


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/learning_benchmark")
    p.add_argument("--data", default=None, help="data root (default: OUT/data)")
    p.add_argument("--demonstrator", default="GymLeader")
    p.add_argument("--battle_format", default="gen1ou")
    p.add_argument("--battles", type=int, default=2000, help="battles to generate (two files each) per data set")
    p.add_argument("--mixed", action="store_true", help="mixed-quality data (module docstring)")
    p.add_argument("--epsilon", type=float, default=0.4, help="--mixed: the eps player's random-order rate")
    p.add_argument("--mix_weight", type=float, default=0.5, help="--mixed: sampling weight of DATA/eps")
    p.add_argument("--eps_side_only", action="store_true",
                   help="--mixed: train on the eps player's side of DATA/eps only (module docstring)")
    p.add_argument("--heldout_battles", type=int, default=100, help="--mixed: held-out battles per pairing")
    p.add_argument("--concurrent", type=int, default=8, help="battles played at once while generating")
    p.add_argument("--model_gin_config", default="tiny_agent.gin")
    p.add_argument("--train_configs", nargs="+", default=None,
                   help=f"gin files or LABEL=GIN (default: il.gin binary_rl.gin; --mixed: {' '.join(MIXED_CONFIGS)})")
    p.add_argument("--run_bindings", nargs=2, action="append", default=[], metavar=("LABEL", "BINDING"),
                   help="a gin binding for one run only (repeatable)")
    p.add_argument("--run_init", nargs=2, action="append", default=[], metavar=("LABEL", "SPEC"),
                   help="start one run from a checkpoint: train --init_from_checkpoint SPEC (run:DIR@EPOCH)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--steps_per_epoch", type=int, default=500)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--dloader_workers", type=int, default=1)
    p.add_argument("--log_interval", type=int, default=100)
    p.add_argument("--eval_battles", type=int, default=200)
    p.add_argument("--greedy", action="store_true", help="evaluate with the argmax action instead of sampling")
    p.add_argument("--gin_bindings", action="append", default=[])
    p.add_argument("--skip_eval", action="store_true", help="train, plot and check held out, but play no battles")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    py = sys.executable
    out = Path(args.out)
    data = Path(args.data) if args.data else out / "data"
    fmt, demo = args.battle_format, args.demonstrator
    configs = parse_train_configs(args.train_configs or (MIXED_CONFIGS if args.mixed else ["il.gin", "binary_rl.gin"]))
    if args.eps_side_only and not args.mixed:
        raise SystemExit("error: --eps_side_only needs --mixed (it trains on DATA/eps, which only --mixed generates)")
    for flag, entries in (("--run_bindings", args.run_bindings), ("--run_init", args.run_init)):
        unknown = {label for label, _ in entries} - {label for label, _ in configs}
        if unknown:
            raise SystemExit(f"error: {flag} names runs that --train_configs does not: {sorted(unknown)}")
    rows, timings = [], {}

    heldout_dir = None
    if args.mixed:
        main_dir, eps_dir, heldout_dir = data / "mirror", data / "eps", data / "heldout"
        s = args.seed
        timings["generate_mirror_s"] = generate(py, main_dir, demo, demo, args.battles, fmt, s, args.concurrent)
        timings["generate_eps_s"] = generate(py, eps_dir, f"eps:{args.epsilon}:{demo}", demo, args.battles, fmt,
                                             s + 1, args.concurrent)
        timings["generate_heldout_s"] = (
            generate(py, heldout_dir, "RandomBaseline", demo, args.heldout_battles, fmt, s + 2, args.concurrent)
            + generate(py, heldout_dir, demo, demo, 2 * args.heldout_battles, fmt, s + 3, args.concurrent)
        )
        data_flags = ["--parsed_replay_dir", str(main_dir), "--custom_replay_dir", str(eps_dir),
                      "--custom_replay_sample_weight", str(args.mix_weight)]
        folders = [main_dir, eps_dir, heldout_dir]
        if args.eps_side_only:
            folders.append(link_learner_side(eps_dir, data / "eps_side", fmt, demo))
            data_flags = ["--parsed_replay_dir", str(folders[-1])]
        for folder in folders:
            print(f"data: {count_files(folder / fmt)} files in {folder / fmt}")
    else:
        main_dir = data
        timings["generate_s"] = generate(py, main_dir, demo, demo, args.battles, fmt, args.seed, args.concurrent)
        data_flags = ["--parsed_replay_dir", str(main_dir)]
        print(f"data: {count_files(main_dir / fmt)} files in {main_dir / fmt}")

    run_dirs = {}
    for label, train_gin in configs:
        run_name = f"{Path(args.model_gin_config).stem}_{label}_s{args.seed}"
        run_dirs[label] = out / "runs" / run_name
        cmd = train_command(py, args, label, train_gin, run_name, out, data_flags)
        if not (run_dirs[label] / "ckpts" / "policy_weights" / f"policy_epoch_{args.epochs - 1}.safetensors").is_file():
            timings[f"train_{label}_s"] = run(cmd)
        if args.skip_eval:
            continue
        table = out / f"eval_{run_name}.json"
        if not table.is_file():  # like training: an evaluation already written is not played again
            timings[f"eval_{label}_s"] = run([
                py, "-m", "metamon.rl.evaluate", "--run_name", run_name, "--ckpt_dir", str(out / "runs"),
                "--formats", fmt, "--opponents", "RandomBaseline", demo,
                "--battles", str(args.eval_battles), "--json_out", str(table), "--seed", str(args.seed),
                *(["--greedy"] if args.greedy else []),
            ])
        for row in json.loads(table.read_text())["rows"]:
            rows.append({"run": run_name, "label": label, **row})

    start = time.monotonic()
    plots = plot_diagnostics(run_dirs, out / "plots")
    heldout = {}
    if heldout_dir is not None:
        il_dir = run_dirs.get("il")
        for label, run_dir in run_dirs.items():
            heldout[label] = heldout_report(run_dir, heldout_dir, None if label == "il" else il_dir, battle_format=fmt)
    timings["report_s"] = time.monotonic() - start

    print("\nrun | opponent | win rate [95% CI] | valid actions | battles")
    for r in rows:
        print(
            f"{r['label']} | {r['opponent']} | {r['win_rate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            f" | {r['valid_actions']:.3f} | {r['finished']}"
        )
    for label, report in heldout.items():
        print(f"held out {label}: approval {report.get('approval')}, entropy {report['entropy']:.3f}, "
              f"checks {report['checks']}")
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.0f}")
    out.mkdir(parents=True, exist_ok=True)
    payload = {"rows": rows, "verdicts": verdicts(rows, demo), "heldout": heldout, "plots": plots,
               "timings_s": timings, "args": vars(args)}
    (out / "learning.json").write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
