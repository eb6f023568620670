"""The PSRO loop, generic over how payoffs are measured and how best responses are found.

Per iteration ``t`` (Lanctot et al. 2017, "A Unified Game-Theoretic Approach to MARL"):

1. make sure every pair of the current members has battles (phase 0 for ``t = 0``; after a
   kill, the pairs that were still missing);
2. solve the meta-game ``M`` over the current members → σ (:mod:`metamon.nash.meta_solvers`);
3. measure σ: empirical exploitability with its bootstrap interval
   (:func:`~metamon.nash.exploitability.bootstrap_exploitability`);
4. ask the oracle for a best response to σ; if it returns a policy already in the population
   (same name or same spec) nothing new can be added: σ is an equilibrium as far as the oracle
   can tell, and the loop stops (``converged``);
5. add it to the population and battle it against every member (only those pairs);
6. log σ, support, exploitability with interval, and the best response's win rate against σ
   (over the members σ was solved on) with its Wilson interval.

Two protocols plug in: a :class:`PayoffEvaluator` (plays battles between members and returns
battle records) and a :class:`BestResponseOracle` (returns a new :class:`Member`).
:mod:`metamon.nash.matrix_game` implements both exactly for matrix games; Showdown versions
play real battles and train agents.

Files in ``save_dir`` (all written atomically, so the loop resumes after a kill at any step):
``population.json`` (:class:`Population`), ``payoffs.json`` (:class:`PayoffTable`, with every
battle id) and ``psro_log.json`` (``{"initial_members", "meta_solver", "iterations": [...],
"final"}``). Calling :func:`run_psro_loop` again on the same ``save_dir`` continues where it
stopped: battles already recorded are not replayed, a best response already added is not
trained again (the oracle is asked at most once per iteration; its own resumability is its
business; a member found in the population beyond the logged iterations is taken as the next
iteration's best response), and ``num_iterations`` counts iterations in total, not additional
ones.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

import numpy as np

from metamon.files import atomic_write
from metamon.nash.errors import NashError
from metamon.nash.exploitability import (
    ExploitabilityEstimate,
    MixtureWinRate,
    bootstrap_exploitability,
    win_rate_vs_mixture,
)
from metamon.nash.meta_game import check_mixture
from metamon.nash.meta_solvers import MetaSolver, get_meta_solver
from metamon.nash.payoff import PairRequest, PayoffTable
from metamon.nash.population import Member, Population

__all__ = [
    "PayoffEvaluator",
    "BestResponseOracle",
    "MetaSolution",
    "PSROIteration",
    "PSROResult",
    "run_psro_loop",
    "solve_meta_game",
    "POPULATION_FILE",
    "PAYOFF_FILE",
    "LOG_FILE",
]

POPULATION_FILE = "population.json"
PAYOFF_FILE = "payoffs.json"
LOG_FILE = "psro_log.json"

logger = logging.getLogger(__name__)


class PayoffEvaluator(Protocol):
    """Plays battles between population members."""

    def play(self, population: Population, requests: Sequence[PairRequest]) -> Iterable[Sequence[Mapping[str, Any]]]:
        """For each request ``(a, b, missing)`` play about ``missing`` battles between the
        members named ``a`` and ``b``; yield battle records (see :mod:`metamon.nash.payoff`:
        ``battle_id`` unique per battle, ``player``, ``opponent``, ``result``) in chunks, as
        they finish -- the loop saves the table after each chunk. Records of battles already
        recorded are ignored, so re-yielding them is harmless."""
        ...


class BestResponseOracle(Protocol):
    """Produces a policy that plays well against a mixture of the population."""

    def best_response(self, population: Population, sigma: np.ndarray, iteration: int) -> Member:
        """A member (new name, spec, metadata) trained/chosen to beat opponents drawn from
        ``sigma`` (``(len(population),)``). Returning a member that is already in the
        population (same name or spec) tells the loop that nothing better exists."""
        ...


@dataclass(frozen=True)
class MetaSolution:
    """σ over ``members`` and its empirical exploitability with interval."""

    members: Tuple[str, ...]
    sigma: Tuple[float, ...]
    exploitability: ExploitabilityEstimate

    def support(self, tol: float = 1e-3) -> List[str]:
        """Members with σ ≥ ``tol`` (played at least once in 1/``tol`` opponents)."""
        return [name for name, p in zip(self.members, self.sigma) if p >= tol]

    def to_dict(self) -> Dict[str, Any]:
        return {"members": list(self.members), "sigma": list(self.sigma),
                "support": self.support(), "exploitability": self.exploitability._asdict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MetaSolution":
        return cls(tuple(d["members"]), tuple(float(x) for x in d["sigma"]),
                   ExploitabilityEstimate(**d["exploitability"]))


@dataclass(frozen=True)
class PSROIteration:
    """One logged iteration: the meta-solution at its start, the best response the oracle
    returned, whether it was new (``added``), and its win rate against σ with Wilson interval."""

    iteration: int
    solution: MetaSolution
    best_response: str
    added: bool
    br_win_rate: MixtureWinRate

    def to_dict(self) -> Dict[str, Any]:
        return {"iteration": self.iteration, **self.solution.to_dict(), "support_size": len(self.solution.support()),
                "best_response": self.best_response, "added": self.added, "br_win_rate": self.br_win_rate._asdict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PSROIteration":
        return cls(int(d["iteration"]), MetaSolution.from_dict(d), d["best_response"], bool(d["added"]),
                   MixtureWinRate(**d["br_win_rate"]))


@dataclass(frozen=True)
class PSROResult:
    """Every iteration's log, the meta-solution over the final population, and whether the
    loop stopped because the oracle found nothing new."""

    iterations: Tuple[PSROIteration, ...]
    final: MetaSolution
    converged: bool


def solve_meta_game(table: PayoffTable, members: Sequence[str], solver: MetaSolver, n_boot: int = 2000,
                    level: float = 0.95, seed: Any = None) -> MetaSolution:
    """σ = ``solver(M)`` over ``members`` and its exploitability with bootstrap interval.
    Raises :class:`NashError` if a pair has no battles or the solver's output is not a
    probability vector."""
    counts = table.counts(members)
    sigma = check_mixture(solver(counts.win_rates()), len(members))
    estimate = bootstrap_exploitability(counts, sigma, n_boot=n_boot, level=level, seed=seed)
    return MetaSolution(tuple(members), tuple(float(x) for x in sigma), estimate)


def run_psro_loop(save_dir: Union[str, os.PathLike], evaluator: PayoffEvaluator, oracle: BestResponseOracle,
             num_iterations: int, initial: Optional[Population] = None,
             meta_solver: Union[str, MetaSolver] = "nash", battles_per_pair: int = 100,
             n_boot: int = 2000, level: float = 0.95, seed: int = 0,
             initial_payoffs: Optional[PayoffTable] = None) -> PSROResult:
    """Run (or resume) PSRO in ``save_dir`` for ``num_iterations`` iterations in total.

    ``initial`` is required on the first call (the phase-0 population) and, if given on a
    resumed call, must have the same members as the saved start. ``meta_solver`` is a name
    from :data:`~metamon.nash.meta_solvers.META_SOLVERS` or a callable ``M → σ``.
    ``battles_per_pair`` battles are requested for every pair; the bootstrap of iteration
    ``t`` uses the generator seeded with ``(seed, t)``, so a resumed run reproduces it.
    ``initial_payoffs`` (members = the initial population's names, in order) holds battles
    already played among the initial members (phase 0); a new run starts its table from a copy
    of it, a resumed run ignores it."""
    if num_iterations < 0:
        raise NashError(f"num_iterations must be ≥ 0, got {num_iterations}")
    save_dir = Path(save_dir)
    solver = get_meta_solver(meta_solver)
    solver_name = meta_solver if isinstance(meta_solver, str) else getattr(meta_solver, "__name__", repr(meta_solver))
    population, table, state = _open_state(save_dir, initial, solver_name, initial_payoffs)
    iterations = [PSROIteration.from_dict(d) for d in state["iterations"]]
    converged = bool(iterations) and not iterations[-1].added

    def fill(requests: Sequence[PairRequest]) -> None:
        if not requests:
            return
        logger.info("playing %d pair(s), %d battle(s)", len(requests), sum(r.missing for r in requests))
        for chunk in evaluator.play(population, requests):
            table.add_records(chunk)
            table.save(save_dir / PAYOFF_FILE)
        short = [r for r in requests if table.n_battles(r.a, r.b) < battles_per_pair]
        if short:
            logger.warning("pairs with fewer battles than requested: %s",
                           ", ".join(f"{r.a} vs {r.b}: {table.n_battles(r.a, r.b)}" for r in short))

    members = list(state["initial_members"])
    for it in iterations:
        members = list(it.solution.members) + ([it.best_response] if it.added else [])

    while not converged and len(iterations) < num_iterations:
        t = len(iterations)
        fill([r for r in table.pairs_needed(members, battles_per_pair) if r.a in members and r.b in members])
        solution = solve_meta_game(table, members, solver, n_boot, level, seed=np.random.default_rng([seed, t]))
        sigma = np.asarray(solution.sigma)
        if len(population) > len(members):  # a killed run added this iteration's best response already
            br, added = population[len(members)], True
        else:
            br = oracle.best_response(population, sigma, t)
            if br.name in population and population[br.name].spec != br.spec:
                raise NashError(f"The oracle returned a policy with spec {br.spec!r} under the name {br.name!r}, "
                                f"which the population already uses for {population[br.name].spec!r}")
            existing = population[br.name] if br.name in population else population.find_spec(br.spec)
            added = existing is None
            if added:
                population.add(br)
                population.save(save_dir / POPULATION_FILE)
            else:
                br = existing
        if added and br.name not in table.members:
            table.add_member(br.name)
            table.save(save_dir / PAYOFF_FILE)
        fill(table.pairs_needed([br.name], battles_per_pair))
        rate = win_rate_vs_mixture(table.counts(members + ([br.name] if added else [])), br.name, members, sigma)
        record = PSROIteration(t, solution, br.name, added, rate)
        iterations.append(record)
        state["iterations"].append(record.to_dict())
        _write_log(save_dir, state)
        logger.info("PSRO iteration %d: sigma %s, support %d, exploitability %.4f [%.4f, %.4f], "
                    "best response %s%s wins %.3f [%.3f, %.3f] against sigma", t,
                    {n: round(p, 4) for n, p in zip(solution.members, solution.sigma) if p > 0},
                    len(solution.support()), solution.exploitability.value, solution.exploitability.low,
                    solution.exploitability.high, br.name, "" if added else " (already a member)",
                    rate.value, rate.low, rate.high)
        converged = not added
        if added:
            members = members + [br.name]

    fill([r for r in table.pairs_needed(members, battles_per_pair) if r.a in members and r.b in members])
    final = solve_meta_game(table, members, solver, n_boot, level, seed=np.random.default_rng([seed, len(iterations)]))
    state["final"] = final.to_dict()
    _write_log(save_dir, state)
    return PSROResult(tuple(iterations), final, converged)


def _open_state(save_dir: Path, initial: Optional[Population], solver_name: str,
                initial_payoffs: Optional[PayoffTable] = None) -> Tuple[Population, PayoffTable, Dict[str, Any]]:
    log_path = save_dir / LOG_FILE
    if not log_path.exists():
        if initial is None or len(initial) == 0:
            raise NashError(f"{save_dir} holds no PSRO run yet: pass the initial population")
        population = Population(list(initial))
        if initial_payoffs is None:
            table = PayoffTable(population.names)
        elif initial_payoffs.members != population.names:
            raise NashError(f"The initial payoffs are over {initial_payoffs.members}, "
                            f"the initial population is {population.names}")
        else:
            table = PayoffTable.from_dict(initial_payoffs.to_dict())
        population.save(save_dir / POPULATION_FILE)
        table.save(save_dir / PAYOFF_FILE)
        state = {"initial_members": population.names, "meta_solver": solver_name, "iterations": [], "final": None}
        _write_log(save_dir, state)
        return population, table, state
    try:
        state = json.loads(log_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise NashError(f"{log_path} is not valid JSON ({e})") from None
    population = Population.load(save_dir / POPULATION_FILE)
    table = PayoffTable.load(save_dir / PAYOFF_FILE)
    if initial is not None and initial.names != state["initial_members"]:
        raise NashError(f"{save_dir} started from {state['initial_members']}, not {initial.names}; "
                        "use another save_dir or omit the initial population to resume")
    if state.get("meta_solver") != solver_name:
        logger.warning("resuming %s with meta-solver %r (it started with %r)",
                       save_dir, solver_name, state.get("meta_solver"))
    if population.names[: len(table.members)] != table.members:
        raise NashError(f"{save_dir}: the payoff table's members {table.members} are not a prefix of the "
                        f"population {population.names}")
    for name in population.names[len(table.members):]:
        table.add_member(name)  # killed between saving the population and the table
    return population, table, state


def _write_log(save_dir: Path, state: Mapping[str, Any]) -> None:
    atomic_write(save_dir / LOG_FILE, json.dumps(state, indent=2) + "\n")
