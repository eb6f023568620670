"""``python -m metamon.nash.run_psro``: PSRO on Showdown, from a population of players to σ.

Example (the seeds' command, with our player specs)::

    python -m metamon.nash.run_psro \\
        --phase0_dir ~/nash_phase0 --save_dir ~/nash_psro --num_iterations 5 \\
        --battle_format gen1ou --team_set competitive \\
        --population RandomBaseline Grunt GymLeader Gen1BossAI PokeEnvHeuristic EmeraldKaizo \\
        --battles_per_pair 100 --meta_solver nash \\
        --collection_battles 500 --oracle_epochs 3 --oracle_steps_per_epoch 1000 \\
        --oracle_model_config small_agent.gin --oracle_train_config psro_oracle.gin \\
        --init_from_checkpoint run:runs/my_run@9 \\
        --parsed_replay_dir ~/metamon_cache/parsed-replays --formats gen1ou --parallel 4 --log

Phase 0 (``--phase0_dir``): the payoff matrix of the initial population (``--population``:
player specs, optionally ``NAME=SPEC``; default the heuristic baselines), ``--battles_per_pair``
battles per pair, σ from ``--meta_solver`` and its exploitability. Files: ``population.json``,
``payoffs.json`` (every battle), ``meta_strategy.json`` (σ, support, exploitability with
interval, the win-rate matrix with counts and Wilson intervals) and ``payoff_heatmap.png``.
A phase-0 folder that already holds a population is reused (its missing battles are played);
``--population`` must then match it or be left out.

PSRO (``--save_dir``): :func:`metamon.nash.psro.run_psro_loop` with the
:class:`~metamon.nash.showdown.ShowdownEvaluator` (battles) and the
:class:`~metamon.nash.oracle.RLBestResponseOracle` (``save_dir/oracle/``: runs, battles, data),
starting from phase 0's battles. After every iteration the log (``psro_log.json``: σ, support,
exploitability with bootstrap interval, the best response's win rate against σ with its Wilson
interval), the population, the payoff table and the plots (:mod:`metamon.nash.plots`) are in
``save_dir``. ``--num_iterations`` counts iterations in total: re-running the same command after
a kill (at any step) continues where it stopped.

Exit status 2 on bad input (unknown player, format, team set, solver, unusable folders), with
one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from metamon.amago.utils import AmagoError
from metamon.baselines import HEURISTIC_COMPOSITE_BASELINES
from metamon.battles import PlayerSpec, check_spec
from metamon.errors import MetamonError
from metamon.files import atomic_write
from metamon.logs import add_log_level_argument, configure_logging
from metamon.nash.errors import NashError
from metamon.nash.meta_solvers import META_SOLVERS, get_meta_solver
from metamon.nash.oracle import RLBestResponseOracle
from metamon.nash.payoff import PayoffTable
from metamon.nash.plots import plot_payoff_heatmap, write_psro_plots
from metamon.nash.population import Member, Population
from metamon.nash.psro import PAYOFF_FILE, POPULATION_FILE, PayoffEvaluator, PSROResult, run_psro_loop, solve_meta_game
from metamon.nash.showdown import ShowdownEvaluator

__all__ = ["DEFAULT_POPULATION", "META_STRATEGY_FILE", "parse_population", "run_phase0", "build_parser", "main"]

logger = logging.getLogger(__name__)

DEFAULT_POPULATION = tuple(HEURISTIC_COMPOSITE_BASELINES)
META_STRATEGY_FILE = "meta_strategy.json"


def parse_population(items: Sequence[str]) -> Population:
    """``SPEC`` or ``NAME=SPEC`` items → a :class:`Population`; a bare spec is named by its
    label (``GymLeader``, ``my_run@4``). Unknown specs raise :class:`MetamonError`."""
    population = Population()
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep:
            name, spec = PlayerSpec.parse(item).label, item
        check_spec(spec)
        population.add(Member(name.strip(), spec.strip()))
    return population


def run_phase0(phase0_dir: Path, population: Optional[Population], evaluator: PayoffEvaluator,
               battles_per_pair: int, meta_solver: str, n_boot: int, seed: int,
               describe: Dict[str, Any]) -> tuple[Population, PayoffTable]:
    """Fill (or finish) the phase-0 payoff table in ``phase0_dir`` and write σ and the heat-map
    (module docstring). ``population`` None: the one saved there. Returns both."""
    phase0_dir.mkdir(parents=True, exist_ok=True)
    pop_path, table_path = phase0_dir / POPULATION_FILE, phase0_dir / PAYOFF_FILE
    if pop_path.exists():
        saved = Population.load(pop_path)
        if population is not None and saved != population:
            raise NashError(f"{phase0_dir} holds the population {saved.specs}, not {population.specs}; "
                            "leave out --population to reuse it, or choose another --phase0_dir")
        population = saved
    elif population is None:
        raise NashError(f"{phase0_dir} holds no population yet: pass --population")
    else:
        population.save(pop_path)
    table = PayoffTable.load(table_path) if table_path.exists() else PayoffTable(population.names)
    if table.members != population.names:
        raise NashError(f"{table_path} is over {table.members}, the population is {population.names}")
    requests = table.pairs_needed(None, battles_per_pair)
    if requests:
        logger.info("phase 0: %d battle(s) over %d pair(s)", sum(r.missing for r in requests), len(requests))
    for chunk in evaluator.play(population, requests):
        table.add_records(chunk)
        table.save(table_path)
    table.save(table_path)
    solution = solve_meta_game(table, population.names, get_meta_solver(meta_solver), n_boot,
                               seed=np.random.default_rng([seed, 0]))  # as PSRO iteration 0
    counts = table.counts()
    low, high = counts.wilson_intervals()
    meta = {**solution.to_dict(), "meta_solver": meta_solver, **describe, "battles_per_pair": battles_per_pair,
            "win_rates": counts.win_rates().tolist(), "battles": counts.n.tolist(),
            "wilson_low": low.tolist(), "wilson_high": high.tolist()}
    atomic_write(phase0_dir / META_STRATEGY_FILE, json.dumps(meta, indent=2) + "\n")
    plot_payoff_heatmap(counts, phase0_dir / "payoff_heatmap.png", title="phase 0: P(row beats column)")
    e = solution.exploitability
    logger.info("phase 0: sigma %s, support %d, exploitability %.3f [%.3f, %.3f]",
                {n: round(p, 3) for n, p in zip(solution.members, solution.sigma) if p > 0},
                len(solution.support()), e.value, e.low, e.high)
    return population, table


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m metamon.nash.run_psro", description=__doc__.split("\n")[0])
    p.add_argument("--phase0_dir", required=True, help="phase 0: population, payoffs, meta_strategy.json")
    p.add_argument("--save_dir", required=True, help="the PSRO run (resumed if it exists)")
    p.add_argument("--num_iterations", type=int, default=5, help="PSRO iterations in total")
    p.add_argument("--battle_format", default="gen1ou")
    p.add_argument("--team_set", default="builtin", help="e.g. competitive, modern_replays_v2 (downloaded)")
    p.add_argument("--population", nargs="+", default=None,
                   help=f"initial player specs, SPEC or NAME=SPEC (default: {' '.join(DEFAULT_POPULATION)})")
    p.add_argument("--battles_per_pair", "--battles_per_matchup", type=int, default=50)
    p.add_argument("--meta_solver", default="nash", choices=sorted(META_SOLVERS))
    p.add_argument("--n_boot", type=int, default=2000, help="bootstrap replicates for exploitability intervals")
    p.add_argument("--collection_battles", type=int, default=500, help="battles per oracle round")
    p.add_argument("--oracle_epochs", type=int, default=3, help="collect-then-finetune rounds per best response")
    p.add_argument("--oracle_train_epochs", type=int, default=1, help="training epochs per round")
    p.add_argument("--oracle_steps_per_epoch", type=int, default=1000)
    p.add_argument("--oracle_batch_size", type=int, default=16)
    p.add_argument("--oracle_model_config", default="small_agent.gin")
    p.add_argument("--oracle_train_config", default="psro_oracle.gin")
    p.add_argument("--oracle_gin_bindings", action="append", default=[], help='"X.y = z", repeatable')
    p.add_argument("--oracle_replay_weight", type=float, default=0.5,
                   help="share of training batches from --parsed_replay_dir (when given)")
    p.add_argument("--base_epochs", type=int, default=10,
                   help="epochs of the base run trained on --parsed_replay_dir when there is no start policy")
    p.add_argument("--init_from_checkpoint", default=None,
                   help="the first best response starts here: run:DIR@N or pretrained:NAME@N")
    p.add_argument("--parsed_replay_dir", default=None, help="trajectories mixed into every finetune")
    p.add_argument("--formats", nargs="+", default=None, help="formats of the base run (default: --battle_format)")
    p.add_argument("--parallel", type=int, default=1, help="battle worker processes (each with its own server)")
    p.add_argument("--server_url", default=None, help="a running server host:port for every battle")
    p.add_argument("--device", default="cpu", help="where trained players run in payoff battles")
    p.add_argument("--dloader_workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", action="store_true", help="log oracle training to wandb")
    add_log_level_argument(p)
    return p


def _summary(result: PSROResult) -> str:
    lines = ["iteration  support  exploitability [95%]        best response  win rate vs sigma [95%]"]
    for it in result.iterations:
        e, w = it.solution.exploitability, it.br_win_rate
        lines.append(f"{it.iteration:>9}  {len(it.solution.support()):>7}  {e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"
                     f"        {it.best_response:>13}  {w.value:.3f} [{w.low:.3f}, {w.high:.3f}]")
    e = result.final.exploitability
    sigma = {n: round(p, 3) for n, p in zip(result.final.members, result.final.sigma) if p > 0}
    lines.append(f"final: sigma {sigma}, support {len(result.final.support())}, "
                 f"exploitability {e.value:.3f} [{e.low:.3f}, {e.high:.3f}]")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    logger.setLevel(logging.INFO)  # the per-iteration report (σ, support, exploitability) is the output
    try:
        if args.num_iterations < 0 or args.battles_per_pair < 1:
            raise NashError("--num_iterations must be >= 0 and --battles_per_pair >= 1")
        phase0_dir, save_dir = Path(args.phase0_dir).expanduser(), Path(args.save_dir).expanduser()
        if args.population is not None:
            population: Optional[Population] = parse_population(args.population)
        elif (phase0_dir / POPULATION_FILE).exists():
            population = None
        else:
            population = parse_population(DEFAULT_POPULATION)
        evaluator = ShowdownEvaluator(args.battle_format, team_set=args.team_set, parallel=args.parallel,
                                      server_url=args.server_url, device=args.device, seed=args.seed,
                                      results_path=save_dir / "tournament_results.jsonl")
        population, table = run_phase0(phase0_dir, population, evaluator, args.battles_per_pair, args.meta_solver,
                                       args.n_boot, args.seed, {"battle_format": args.battle_format,
                                                                "team_set": args.team_set})
        oracle = RLBestResponseOracle(
            save_dir / "oracle", args.battle_format, team_set=args.team_set, rounds=args.oracle_epochs,
            collection_battles=args.collection_battles, model_gin_config=args.oracle_model_config,
            train_gin_config=args.oracle_train_config, init_from_checkpoint=args.init_from_checkpoint,
            parsed_replay_dir=args.parsed_replay_dir, formats=args.formats, replay_weight=args.oracle_replay_weight,
            train_epochs=args.oracle_train_epochs, steps_per_epoch=args.oracle_steps_per_epoch,
            batch_size=args.oracle_batch_size, base_epochs=args.base_epochs, gin_bindings=args.oracle_gin_bindings,
            parallel=args.parallel, server_url=args.server_url, dloader_workers=args.dloader_workers,
            log=args.log, seed=args.seed)
        result: Optional[PSROResult] = None
        for total in range(min(1, args.num_iterations), args.num_iterations + 1):
            result = run_psro_loop(save_dir, evaluator, oracle, total, initial=population, meta_solver=args.meta_solver,
                              battles_per_pair=args.battles_per_pair, n_boot=args.n_boot, seed=args.seed,
                              initial_payoffs=table)
            write_psro_plots(save_dir)
            if result.converged:
                logger.info("the oracle found nothing better than sigma: stopping")
                break
    except (MetamonError, AmagoError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(_summary(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
