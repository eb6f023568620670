"""``python -m metamon.selfplay.train_vanilla_selfplay``: the generational self-play loop.

Generation 0 is ``--init_checkpoint``: a trained run (``run:DIR@N``) or a published model
(``pretrained:NAME@N``, or the bare registry name as metamon's scripts write it,
``--init_checkpoint SyntheticRLV2``; its generations are finetuned with the model's registry
gin bindings and spaces, as ``finetune_from_hf`` does). For each
iteration i = 0 … num_iterations−1:

1. **generate**: generation i plays itself, ``ceil(episodes_per_iteration / 2)`` battles (two
   trajectory files each, one per side) into ``iteration_i/data/<format>/``
   (:func:`metamon.data.generate.generate`); with ``--earlier_generations_share s`` (i ≥ 1) a
   share s of those battles is played against the earlier generations instead, split evenly,
   into ``iteration_i/earlier/gen_k/<format>/``;
2. **filter**: ``iteration_i/data`` → ``iteration_i/filtered`` and the battles against earlier
   generations → ``iteration_i/filtered_earlier``, which training samples with weight s
   (``custom_replay_sample_weight``) (:func:`metamon.data.filter.filter_trajectories`:
   the invalid-rate rule reads the recorded ``invalid_actions`` flags);
3. **train**: generation i+1 = a new run ``generations/gen_{i+1}`` started from generation i's
   weights (``TrainConfig.init_from_checkpoint``), trained ``epochs_per_iteration`` epochs on
   the filtered data with ``--train_gin_config``; with a damped config the reference is
   generation i (reset after its weights are loaded);
4. **evaluate**: generation i+1 plays ``num_eval_battles`` battles against each
   ``--eval_opponents`` baseline and each earlier generation (:mod:`metamon.battles.tournament`;
   generation 0 plays the baselines before iteration 0), all into one results file;
5. **rate**: Bradley–Terry ratings of every generation and baseline with bootstrap intervals
   (:mod:`metamon.selfplay.elo`: ``ratings.json/.csv``, ``ratings_ratings.png``,
   ``ratings_winrates.png``), and ``progress.json`` / ``progress.png``: per generation the win
   rate against each baseline and the damping metrics of its training run; ``curves.png``: the
   per-update drift KL to the reference and policy entropy of all generations' training, end to
   end (:func:`training_curves`).

Files (``SAVE_DIR/RUN_NAME/``): ``config.json`` (the flags), ``state.json`` (finished steps;
written atomically after each step), ``iteration_{i}/``, ``generations/gen_{i}/`` (train runs),
``tournament_results.jsonl``, ``ratings.*``, ``progress.*``, ``curves.png``.

**Resume**: run the same command again. Finished steps (``state.json``) are skipped; an
interrupted step picks up where it stopped: generation counts the trajectory files already
written, filtering starts over, training resumes the generation's run at its latest complete
checkpoint (its damping reference then restarts from the resumed weights, see
:mod:`metamon.amago.reference`), evaluation plays only the battles missing from the results
file. A changed flag that shapes the results (everything but the evaluation/parallelism
options) is refused: start a new ``--run_name``.

This is the seeds' ``metamon/rl/train_vanilla_selfplay.py`` (same flags); it lives in
``metamon.selfplay`` because it rates players, which ``metamon.rl`` (a lower floor) cannot import.
Exit code 2 on bad input.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from metamon.amago.run_layout import RunLayout
from metamon.amago.utils import AmagoError
from metamon.battles import resolve_spec
from metamon.battles.tournament import Matchup, canonical_spec, play_tournament
from metamon.battles.tournament_file import ResultsFile
from metamon.data.filter import FilterCriteria, filter_trajectories
from metamon.data.generate import count_trajectory_files, generate
from metamon.errors import MetamonError
from metamon.files import atomic_write
from metamon.formats import check_format
from metamon.logs import add_log_level_argument, configure_logging
from metamon.rl.pretrained import get_pretrained_model
from metamon.rl.run_dir import CONFIG_FILE, RunInfo, available_epochs
from metamon.rl.train import build_experiment, train_experiment
from metamon.rl.train_config import TrainConfig
from metamon.selfplay.elo import rate_records, write_elo_outputs

__all__ = ["build_parser", "run_loop", "main", "plot_training_curves", "training_curves", "STATE_FILE", "RESULTS_FILE"]

STATE_FILE = "state.json"
CONFIG_JSON = "config.json"
RESULTS_FILE = "tournament_results.jsonl"
#: flags that may change between a run and its resume (they do not shape the results)
_FREE_FLAGS = {"parallel", "server_url", "max_concurrent", "dloader_workers", "bootstrap", "no_progress",
               "num_iterations", "log_level"}
#: the per-update curves drawn in curves.png: drift from the reference and the policy's entropy
CURVE_METRICS = ("Damping/KL to Reference", "Policy Entropy (test-time gamma)")
_DAMPING_METRICS = ("Damping/KL to Reference", "Damping/KL per Update", "Damping/Entropy",
                    "Damping/KL Coefficient", "Learning Rate")


def build_parser(prog: str = "python -m metamon.selfplay.train_vanilla_selfplay") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--run_name", required=True)
    p.add_argument("--save_dir", required=True)
    p.add_argument("--init_checkpoint", required=True,
                   help="generation 0: run:DIR@EPOCH (run:DIR = its latest) or a published model, NAME[@EPOCH]")
    p.add_argument("--num_iterations", type=int, default=10)
    p.add_argument("--epochs_per_iteration", type=int, default=20)
    p.add_argument("--steps_per_epoch", type=int, default=1000, help="optimizer updates per epoch")
    p.add_argument("--episodes_per_iteration", type=int, default=5000, help="trajectory files (2 per battle)")
    p.add_argument("--earlier_generations_share", type=float, default=0.0,
                   help="share of each iteration's battles that generation i (i >= 1) plays against the "
                        "earlier generations instead of itself; training samples them with this weight")
    p.add_argument("--num_eval_battles", type=int, default=100, help="per (generation, opponent) pair")
    p.add_argument("--eval_opponents", nargs="+", default=["RandomBaseline", "GymLeader"])
    p.add_argument("--model_gin_config", default=None,
                   help="default: the init run's config.gin, or a published model's model gin (its architecture, "
                        "so the weights load)")
    p.add_argument("--train_gin_config", default="vanilla_selfplay_baseline.gin")
    p.add_argument("--gin_bindings", action="append", default=[])
    p.add_argument("--battle_format", default="gen1ou")
    p.add_argument("--team_set", default="competitive")
    p.add_argument("--obs_space", default=None, help="default: the init run's")
    p.add_argument("--action_space", default=None, help="default: the init run's")
    p.add_argument("--reward_function", default=None, help="default: the init run's")
    p.add_argument("--tokenizer", default=None, help="default: the init run's")
    p.add_argument("--batch_size_per_gpu", type=int, default=12)
    p.add_argument("--grad_accum", type=int, default=1)
    p.add_argument("--dloader_workers", type=int, default=4)
    p.add_argument("--max_invalid_rate", type=float, default=0.05)
    p.add_argument("--min_turns", type=int, default=10)
    p.add_argument("--max_turns", type=int, default=1000)
    p.add_argument("--balance_outcomes", action="store_true")
    p.add_argument("--parallel", type=int, default=1, help="worker processes (each starts a local server)")
    p.add_argument("--server_url", default=None, help="use this server instead of starting local ones")
    p.add_argument("--max_concurrent", type=int, default=5)
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_progress", action="store_true")
    add_log_level_argument(p)
    return p


class _Loop:
    """One loop directory and its state (module docstring)."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.root = Path(args.save_dir).expanduser() / args.run_name
        self.gens_dir = self.root / "generations"
        self.results = self.root / RESULTS_FILE
        self.state_path = self.root / STATE_FILE
        self.state: Dict[str, Any] = {"done": [], "generations": [canonical_spec(args.init_checkpoint)]}

    # ------------------------------------------------------------------------ state
    def load_or_start(self) -> None:
        args = self.args
        config = {k: v for k, v in vars(args).items() if k not in _FREE_FLAGS}
        config_path = self.root / CONFIG_JSON
        if config_path.is_file():
            old = json.loads(config_path.read_text())
            changed = [f"--{k}: {old.get(k)!r} → {v!r}" for k, v in config.items() if old.get(k) != v]
            if changed:
                raise MetamonError(f"{self.root} was started with other flags ({'; '.join(changed)}); "
                                   "resume with the same flags or choose another --run_name")
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(config_path, json.dumps(config, indent=2) + "\n")
        if self.state_path.is_file():
            self.state = json.loads(self.state_path.read_text())

    def done(self, step: str) -> bool:
        return step in self.state["done"]

    def finish(self, step: str) -> None:
        self.state["done"].append(step)
        atomic_write(self.state_path, json.dumps(self.state, indent=2) + "\n")

    def say(self, message: str) -> None:
        print(f"[{self.args.run_name}] {message}", flush=True)

    # ------------------------------------------------------------------------ steps
    def battle_plan(self, i: int) -> List[tuple]:
        """``(opponent generation or None for itself, battles, folder)`` of iteration ``i``: the
        share ``--earlier_generations_share`` of the battles goes to generations 0 … i−1, split
        evenly (the first ones get the remainder), the rest is self-play."""
        it = self.root / f"iteration_{i}"
        wanted = math.ceil(self.args.episodes_per_iteration / 2)
        earlier = round(self.args.earlier_generations_share * wanted) if i else 0
        plan = [(None, wanted - earlier, it / "data")]
        if earlier:
            plan += [(k, earlier // i + int(k < earlier % i), it / "earlier" / f"gen_{k}") for k in range(i)]
        return [(k, n, folder) for k, n, folder in plan if n > 0]

    def step_generate(self, i: int) -> None:
        args, gens = self.args, self.state["generations"]
        for k, wanted, out in self.battle_plan(i):
            have = count_trajectory_files(out, args.battle_format) // 2 if out.is_dir() else 0
            if have >= wanted:
                continue
            opponent = None if k is None else gens[k]
            self.say(f"iteration {i}: generation {i} plays {'itself' if k is None else f'generation {k}'}, "
                     f"{wanted - have} battles")
            summary = generate(gens[i], opponent, args.battle_format, wanted - have, out,
                               team_set=args.team_set, parallel=args.parallel, server_url=args.server_url,
                               concurrent=args.max_concurrent, seed=args.seed * 1000 + i + have + 100 * (k or 0),
                               show_progress=not args.no_progress)
            self.say(summary.report(gens[i], opponent or gens[i]))

    def step_filter(self, i: int) -> None:
        args, it = self.args, self.root / f"iteration_{i}"
        shutil.rmtree(it / "filtered", ignore_errors=True)  # a killed filter starts over
        shutil.rmtree(it / "filtered_earlier", ignore_errors=True)
        criteria = FilterCriteria(args.max_invalid_rate, args.min_turns, args.max_turns, args.balance_outcomes,
                                  args.seed)
        report = filter_trajectories(it / "data", it / "filtered", criteria, formats=[args.battle_format])
        self.say(f"iteration {i}: filter: {report.summary()}")
        for k, _, folder in self.battle_plan(i):
            if k is not None:
                earlier = filter_trajectories(folder, it / "filtered_earlier", criteria, formats=[args.battle_format])
                self.say(f"iteration {i}: filter (vs generation {k}): {earlier.summary()}")
        if report.total_kept == 0:
            raise MetamonError(f"iteration {i}: the filter kept no trajectory (see above); loosen "
                               "--min_turns / --max_invalid_rate or generate more episodes")

    def _source(self):
        """Generation 0's ``(spaces, model gin, gin params)``: a run's ``run.json`` and ``config.gin``,
        or a published model's registry entry, its model gin and its registry bindings."""
        init = resolve_spec(self.args.init_checkpoint)
        if init.kind == "pretrained":
            model = get_pretrained_model(init.target)
            return model, str(model.model_gin_config), dict(model.gin_bindings())
        run_dir = Path(init.target).expanduser()
        return RunInfo.load(run_dir), str(run_dir / CONFIG_FILE), {}

    def _train_config(self, i: int) -> TrainConfig:
        args = self.args
        info, source_gin, _ = self._source()
        model_gin = args.model_gin_config or source_gin
        return TrainConfig(
            run_name=f"gen_{i + 1}", save_dir=str(self.gens_dir), model_gin_config=model_gin,
            train_gin_config=args.train_gin_config, gin_bindings=tuple(args.gin_bindings),
            init_from_checkpoint=self.state["generations"][i], epochs=args.epochs_per_iteration,
            steps_per_epoch=args.steps_per_epoch, batch_size_per_gpu=args.batch_size_per_gpu,
            grad_accum=args.grad_accum, formats=[args.battle_format],
            parsed_replay_dir=str(self.root / f"iteration_{i}" / "filtered"),
            **self._earlier_data(i),
            obs_space=args.obs_space or info.observation_space, action_space=args.action_space or info.action_space,
            reward_function=args.reward_function or info.reward_function, tokenizer=args.tokenizer or info.tokenizer,
            dloader_workers=args.dloader_workers, ckpt_interval=1, log_interval=max(1, args.steps_per_epoch // 20),
            eval_gens=(), seed=args.seed + i,
        )

    def _earlier_data(self, i: int) -> Dict[str, Any]:
        """The battles against earlier generations as the custom replay source, sampled with
        weight ``--earlier_generations_share`` (nothing when there are none)."""
        folder = self.root / f"iteration_{i}" / "filtered_earlier"
        if not any(k is not None for k, _, _ in self.battle_plan(i)):
            return {}
        if count_trajectory_files(folder, self.args.battle_format) == 0:
            raise MetamonError(f"iteration {i}: the filter kept no battle against earlier generations ({folder})")
        return dict(custom_replay_dir=str(folder), custom_replay_sample_weight=self.args.earlier_generations_share)

    def step_train(self, i: int) -> None:
        config = self._train_config(i)
        run_dir = self.gens_dir / config.run_name
        last = self.args.epochs_per_iteration - 1
        states = RunLayout(run_dir).training_state_epochs() if run_dir.is_dir() else []
        if last not in available_epochs(run_dir):
            if states:  # killed during training: resume its own run
                self.say(f"iteration {i}: resuming gen_{i + 1} at epoch {states[-1]}")
                config.init_from_checkpoint, config.ckpt = None, states[-1]
            else:
                self.say(f"iteration {i}: training gen_{i + 1} from generation {i}")
            train_experiment(build_experiment(config, gin_params=self._source()[2]), config.ckpt)
        spec = canonical_spec(f"run:{run_dir}@{last}")
        self.state["generations"] = self.state["generations"][: i + 1] + [spec]

    def step_evaluate(self, g: int) -> None:
        args, gens = self.args, self.state["generations"]
        matchups = [Matchup(gens[g], opponent, args.num_eval_battles) for opponent in args.eval_opponents]
        matchups += [Matchup(gens[g], gens[k], args.num_eval_battles) for k in range(g)]
        self.say(f"evaluating generation {g}: {len(matchups)} matchups x {args.num_eval_battles} battles")
        report = play_tournament(matchups, self.results, args.battle_format, seed=f"{args.seed}/{g}",
                                 show_progress=not args.no_progress, team_set=args.team_set,
                                 parallel=args.parallel, server_url=args.server_url,
                                 max_concurrent=args.max_concurrent)
        short = sum(max(0, m.matchup.n_battles - m.total) for m in report.matchups)
        if short:
            raise MetamonError(f"generation {g}: {short} evaluation battles did not finish "
                               f"({report.errors} errors); run the same command again to play them")

    def step_rate(self, g: int) -> None:
        args, gens = self.args, self.state["generations"][: g + 1]
        records = ResultsFile(self.results).unique()
        ratings, games = rate_records(records, anchor=args.eval_opponents[0], bootstrap=args.bootstrap,
                                      seed=args.seed)
        write_elo_outputs(self.root / "ratings", ratings, games, extra={"generations": gens})
        rows = []
        for k, spec in enumerate(gens):
            row = {"generation": k, "spec": spec, "rating": ratings.rating(spec) if spec in ratings.players else None}
            for opponent in args.eval_opponents:
                row[f"win_rate_vs_{opponent}"] = _win_rate(records, spec, canonical_spec(opponent))
            row.update(_damping_summary(self.gens_dir / f"gen_{k}") if k else {})
            rows.append(row)
        atomic_write(self.root / "progress.json", json.dumps({"generations": rows}, indent=2) + "\n")
        _plot_progress(rows, args.eval_opponents, self.root / "progress.png")
        plot_training_curves(training_curves([self.gens_dir / f"gen_{k}" for k in range(1, g + 1)]),
                             self.root / "curves.png")
        self.say("ratings: " + ", ".join(f"gen {r['generation']}: {r['rating']:.0f}" for r in rows
                                         if r["rating"] is not None))

    # ------------------------------------------------------------------------ the loop
    def run(self) -> None:
        self.load_or_start()
        if not self.done("evaluate_0"):
            self.step_evaluate(0)
            self.finish("evaluate_0")
        if not self.done("rate_0"):
            self.step_rate(0)
            self.finish("rate_0")
        for i in range(self.args.num_iterations):
            for step, run in (("generate", self.step_generate), ("filter", self.step_filter),
                              ("train", self.step_train)):
                if not self.done(f"{step}_{i}"):
                    run(i)
                    self.finish(f"{step}_{i}")
            for step, run in (("evaluate", self.step_evaluate), ("rate", self.step_rate)):
                if not self.done(f"{step}_{i + 1}"):
                    run(i + 1)
                    self.finish(f"{step}_{i + 1}")
        self.say(f"done: {len(self.state['generations'])} generations in {self.root}")


def _win_rate(records: Sequence[dict], player: str, opponent: str) -> Optional[float]:
    """(wins + ½ draws) / battles of ``player`` against ``opponent`` (either side of a record)."""
    score = n = 0.0
    for r in records:
        if {r["player"], r["opponent"]} != {player, opponent} or player == opponent:
            continue
        mine = r["result"] if r["player"] == player else {"win": "loss", "loss": "win"}.get(r["result"], "draw")
        score += {"win": 1.0, "loss": 0.0}.get(mine, 0.5)
        n += 1
    return score / n if n else None


def _damping_summary(run_dir: Path) -> Dict[str, float]:
    """Mean of each damping metric over the last epoch's logged rows of a training run."""
    path = RunLayout(run_dir).metrics_csv
    if not path.is_file():
        return {}
    rows = [r for r in csv.DictReader(open(path)) if r["key"] == "train-update"]
    if not rows:
        return {}
    last = max(int(r["epoch"]) for r in rows)
    out = {}
    for name in _DAMPING_METRICS:
        values = [float(r["value"]) for r in rows if r["metric"] == name and int(r["epoch"]) == last]
        values = [v for v in values if math.isfinite(v)]  # NaN: not tracked (e.g. per-update KL without the controller)
        if values:
            out[name] = sum(values) / len(values)
    return out


def _plot_progress(rows: List[dict], opponents: Sequence[str], path: Path) -> None:
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    gens = [r["generation"] for r in rows]
    for opponent in opponents:
        ys = [r[f"win_rate_vs_{opponent}"] for r in rows]
        ax1.plot(gens, [math.nan if y is None else y for y in ys], marker="o", label=opponent)
    ax1.set(xlabel="generation", ylabel="win rate", ylim=(0, 1), title="win rate vs baselines")
    ax1.legend()
    ax2.plot(gens, [math.nan if r["rating"] is None else r["rating"] for r in rows], marker="o")
    ax2.set(xlabel="generation", ylabel="Elo (Bradley–Terry)", title="rating")
    fig.tight_layout()
    fig.savefig(path)


def training_curves(run_dirs: Sequence[Path], metrics: Sequence[str] = CURVE_METRICS) -> Dict[str, list]:
    """Per-update training curves of consecutive generations' runs, end to end.

    Returns ``{metric: [(update, value), ...]}`` for each of ``metrics`` that some run logged
    with a finite value, plus ``"boundaries"``: the update count where each run after the first
    starts. A run's updates are offset by the updates of the runs before it (its last logged
    ``gradient_steps``), so generation k's curve follows generation k−1's.
    """
    curves: Dict[str, list] = {name: [] for name in metrics}
    boundaries, offset = [], 0
    for k, run_dir in enumerate(run_dirs):
        path = RunLayout(run_dir).metrics_csv
        rows = [r for r in csv.DictReader(open(path)) if r["key"] == "train-update"] if path.is_file() else []
        if k:
            boundaries.append(offset)
        for r in rows:
            value = float(r["value"])
            if r["metric"] in curves and math.isfinite(value):
                curves[r["metric"]].append((offset + int(r["gradient_steps"]), value))
        offset += max((int(r["gradient_steps"]) for r in rows), default=0)
    out: Dict[str, list] = {name: points for name, points in curves.items() if points}
    out["boundaries"] = boundaries
    return out


def plot_training_curves(curves: Dict[str, list], path: Path) -> None:
    """One panel per metric of :func:`training_curves` (dashed lines: a new generation starts)."""
    names = [name for name in curves if name != "boundaries"]
    if not names:
        return
    fig = Figure(figsize=(5 * len(names), 3.6))
    FigureCanvasAgg(fig)
    for ax, name in zip(fig.subplots(1, len(names), squeeze=False)[0], names):
        xs, ys = zip(*curves[name])
        ax.plot(xs, ys, marker=".")
        for x in curves["boundaries"]:
            ax.axvline(x, color="grey", linestyle="--", linewidth=0.8)
        ax.set(xlabel="updates (all generations)", title=name)
    fig.tight_layout()
    fig.savefig(path)


def run_loop(argv: Optional[Sequence[str]] = None) -> Path:
    """Parse ``argv`` and run (or resume) the loop; returns the loop directory."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    for name in ("num_iterations", "epochs_per_iteration", "steps_per_epoch", "episodes_per_iteration",
                 "num_eval_battles", "parallel", "max_concurrent"):
        if getattr(args, name) < 1:
            raise MetamonError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not 0.0 <= args.earlier_generations_share < 1.0:
        raise MetamonError(f"--earlier_generations_share must be in [0, 1), got {args.earlier_generations_share}")
    check_format(args.battle_format)
    spec = resolve_spec(args.init_checkpoint)
    if spec.kind not in ("run", "pretrained"):
        raise MetamonError("--init_checkpoint takes a trained run, run:DIR@EPOCH, or a published model, "
                           f"NAME[@EPOCH]; got {args.init_checkpoint!r}")
    loop = _Loop(args)
    loop.run()
    return loop.root


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        run_loop(argv)
    except (MetamonError, AmagoError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
