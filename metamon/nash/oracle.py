"""The RL best-response oracle of PSRO on Showdown: :class:`RLBestResponseOracle`.

It implements :class:`~metamon.nash.psro.BestResponseOracle`: asked for a best response to σ in
iteration ``t``, it trains a new policy and returns it as a member ``br_<t>`` with spec
``run:<work_dir>/runs/br<t>-r<R-1>@<epoch>``.

Algorithm (``R = rounds``)::

    candidate ← the previous best response (the last member this oracle added), else
                init_from_checkpoint, else a base run trained on parsed_replay_dir ("base")
    for round k = 0 … R−1:
        draw collection_battles opponents i.i.d. from σ (Population.sample, rng (seed, t, k))
        play the candidate against each drawn opponent (metamon.data.generate), recording both
            sides into battles/br<t>/r<k>/vs<i>-<label>/<format>/
        link the candidate's own files into data/br<t>/<format>/ (all rounds so far)
        finetune: a new run runs/br<t>-r<k>, initialised from the candidate's weights, trained
            with the RL objective (TrainConfig + run_training; train gin psro_oracle.gin) for
            train_epochs × steps_per_epoch updates on data/br<t> (mixed with parsed_replay_dir
            at weight replay_weight when that is given)
        candidate ← run:runs/br<t>-r<k>@<last epoch>

So each round is on-policy data from the current candidate followed by offline policy
improvement on everything it has played against σ so far. The candidate's files are told
apart from the opponent's by the username prefix :func:`metamon.server.unique_username` gives
the candidate's label; run folders are named ``br<t>-r<k>`` so the candidate's label never
shares a prefix with an earlier best response. When an opponent has the candidate's own spec
(self-play), both sides are the candidate's and both are used.

The observation space, action space, reward function and tokenizer of every finetune are the
starting run's (its ``run.json``); the base run uses :class:`~metamon.rl.train_config.TrainConfig`'s
defaults. The model gin must describe the starting run's architecture (the trainer checks).

Files under ``work_dir``::

    base/                         the scratch run (only without a previous BR or init_from_checkpoint)
    runs/br<t>-r<k>/              one finetune per round (a metamon run directory)
    battles/br<t>/r<k>/vs<i>-<label>/<format>/   both sides of every battle played
    data/br<t>/<format>/          hard links (copies where linking fails) to the candidate's files

Resumable at any step: a round whose run has the weights of its last epoch (``train_epochs − 1``)
is skipped entirely;
battles already recorded in a ``vs`` folder count towards its share (a battle is counted by its
id among the candidate's files); a killed finetune resumes from its last complete training state.
A round whose battles all errored stops the oracle with :class:`NashError` (nothing to train on).
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from metamon.amago.run_layout import RunLayout
from metamon.battles import PlayerSpec
from metamon.data.generate import generate
from metamon.data.trajectory_file import TrajectoryFileError, parse_trajectory_filename
from metamon.nash.errors import NashError
from metamon.nash.population import Member, Population
from metamon.rl.pretrained import get_pretrained_model
from metamon.rl.run_dir import RunInfo
from metamon.rl.train import run_training
from metamon.rl.train_config import TrainConfig
from metamon.server import unique_username

#: PlayerSpec kinds a first best response may start from
INIT_KINDS = ("run", "pretrained")

__all__ = ["RLBestResponseOracle", "ORACLE_TAG", "candidate_prefix"]

logger = logging.getLogger(__name__)

ORACLE_TAG = "rl"  # Member.metadata["oracle"] of the members this oracle adds
_SUFFIXES = (".json.lz4", ".json")


def candidate_prefix(spec: str) -> str:
    """The username prefix generated players of ``spec`` get (``unique_username(label)`` minus
    its 10 random digits)."""
    return unique_username(PlayerSpec.parse(spec).label, random.Random(0))[:-10]


def _trajectory_files(folder: Path) -> List[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(_SUFFIXES) and not p.name.startswith("."))


def _own_files(folder: Path, prefix: str) -> List[Path]:
    """Files in ``folder`` recorded from the point of view of a player named ``prefix`` + 10 digits."""
    pattern = re.compile(re.escape(prefix) + r"\d{10}")
    own = []
    for path in _trajectory_files(folder):
        try:
            player = parse_trajectory_filename(path).player
        except TrajectoryFileError:
            continue
        if pattern.fullmatch(player):
            own.append(path)
    return own


def _link(source: Path, target: Path) -> None:
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


class RLBestResponseOracle:
    """Trains best responses to σ with data collection and RL finetuning (module docstring).

    Args:
        work_dir: where runs, battles and data go (``save_dir/oracle`` in ``python -m metamon.nash.run_psro``).
        battle_format, team_set: of every collection battle.
        rounds: collect-then-finetune rounds per best response (``--oracle_epochs``).
        collection_battles: battles per round, opponents drawn from σ.
        model_gin_config, train_gin_config: gin files of the finetunes (bare names in the
            package configs, or paths).
        init_from_checkpoint: the first candidate (``run:DIR@N`` or ``pretrained:NAME@N``, whose
            spaces the finetunes then use) when no best response exists yet.
        parsed_replay_dir: trajectories (``<format>/`` folders) for the base run and mixed into
            every finetune with weight ``replay_weight``; ``formats`` selects those of the base run.
        train_epochs, steps_per_epoch, batch_size, grad_accum: each round's finetune.
        base_epochs: the base run's epochs (same steps per epoch).
        gin_bindings: extra ``"X.y = z"`` bindings for every run.
        parallel, server_url, concurrent, battle_timeout_s: passed to :func:`generate`.
        dloader_workers, log, seed: training (``log``: wandb); ``seed`` also draws opponents.
        generate_fn, train_fn: replace :func:`generate` / :func:`run_training` (tests).
    """

    def __init__(self, work_dir: Union[str, os.PathLike], battle_format: str, *, team_set: str = "builtin",
                 rounds: int = 3, collection_battles: int = 500, model_gin_config: str = "small_agent.gin",
                 train_gin_config: str = "psro_oracle.gin", init_from_checkpoint: Optional[str] = None,
                 parsed_replay_dir: Optional[str] = None, formats: Optional[Sequence[str]] = None,
                 replay_weight: float = 0.5, train_epochs: int = 1, steps_per_epoch: int = 1000,
                 batch_size: int = 16, grad_accum: int = 1, base_epochs: int = 10, gin_bindings: Sequence[str] = (),
                 parallel: int = 1, server_url: Optional[str] = None, concurrent: int = 5,
                 battle_timeout_s: Optional[float] = 300.0, dloader_workers: int = 0, log: bool = False,
                 seed: int = 0, generate_fn: Callable[..., Any] = generate,
                 train_fn: Callable[[TrainConfig], None] = run_training):
        for name, value in (("rounds", rounds), ("collection_battles", collection_battles),
                            ("train_epochs", train_epochs), ("steps_per_epoch", steps_per_epoch),
                            ("base_epochs", base_epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise NashError(f"RLBestResponseOracle: {name} must be an int >= 1, got {value!r}")
        if init_from_checkpoint is not None and PlayerSpec.parse(init_from_checkpoint).kind not in INIT_KINDS:
            raise NashError("init_from_checkpoint must name a trained run (run:DIR@N) or a published model "
                            f"(pretrained:NAME@N), got {init_from_checkpoint!r}")
        self.work_dir = Path(work_dir).resolve()
        self.battle_format = battle_format
        self.team_set = team_set
        self.rounds = rounds
        self.collection_battles = collection_battles
        self.model_gin_config = model_gin_config
        self.train_gin_config = train_gin_config
        self.init_from_checkpoint = init_from_checkpoint
        self.parsed_replay_dir = parsed_replay_dir
        self.formats = tuple(formats) if formats else (battle_format,)
        self.replay_weight = replay_weight
        self.train_epochs = train_epochs
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.base_epochs = base_epochs
        self.gin_bindings = tuple(gin_bindings)
        self.generate_options: Dict[str, Any] = dict(team_set=team_set, parallel=parallel, server_url=server_url,
                                                     concurrent=concurrent, battle_timeout_s=battle_timeout_s,
                                                     show_progress=False)
        self.dloader_workers = dloader_workers
        self.log = log
        self.seed = seed
        self.generate_fn = generate_fn
        self.train_fn = train_fn

    # ------------------------------------------------------------------ the protocol
    def best_response(self, population: Population, sigma: np.ndarray, iteration: int) -> Member:
        """Train (or finish training) the best response of ``iteration`` to ``sigma`` and return
        it as member ``br_<iteration>``."""
        start = self._start_spec(population)
        candidate = start
        for k in range(self.rounds):
            run_dir = self.work_dir / "runs" / f"br{iteration}-r{k}"
            if self._final_epoch(run_dir, self.train_epochs) is None:
                self._collect(population, sigma, iteration, k, candidate)
                self._train(run_dir, candidate, self._data_dir(iteration), self.train_epochs)
            candidate = f"run:{run_dir}@{self.train_epochs - 1}"
            logger.info("best response %d, round %d of %d done: %s", iteration, k + 1, self.rounds, candidate)
        return Member(f"br_{iteration}", candidate,
                      {"oracle": ORACLE_TAG, "iteration": iteration, "init": start, "rounds": self.rounds,
                       "collection_battles": self.collection_battles,
                       "training_files": len(_trajectory_files(self._data_dir(iteration) / self.battle_format))})

    # ------------------------------------------------------------------ steps
    def _start_spec(self, population: Population) -> str:
        previous = [m for m in population if m.metadata.get("oracle") == ORACLE_TAG]
        if previous:
            return previous[-1].spec
        if self.init_from_checkpoint is not None:
            return self.init_from_checkpoint
        if self.parsed_replay_dir is None:
            raise NashError("The best-response oracle needs a policy to start from: pass init_from_checkpoint "
                            "(run:DIR@N) or parsed_replay_dir (a base run is trained on it first)")
        base = self.work_dir / "base"
        if self._final_epoch(base, self.base_epochs) is None:
            logger.info("training the base policy from scratch on %s", self.parsed_replay_dir)
            self._train(base, None, None, self.base_epochs)
        return f"run:{base}@{self.base_epochs - 1}"

    def _data_dir(self, iteration: int) -> Path:
        return self.work_dir / "data" / f"br{iteration}"

    def _collect(self, population: Population, sigma: np.ndarray, iteration: int, k: int, candidate: str) -> None:
        """Play round ``k``'s battles that are not recorded yet; link the candidate's files into
        the data folder."""
        rng = np.random.default_rng([self.seed, iteration, k])
        drawn = Counter(m.name for m in population.sample(sigma, rng, self.collection_battles))
        prefix = candidate_prefix(candidate)
        data = self._data_dir(iteration) / self.battle_format
        for index, member in enumerate(population):
            wanted = drawn.get(member.name, 0)
            if wanted == 0:
                continue
            if member.spec != candidate and candidate_prefix(member.spec) == prefix:
                logger.warning("opponent %s has the candidate's username prefix %r: both sides of its battles "
                               "are used for training", member.name, prefix)
            label = re.sub(r"[^A-Za-z0-9-]", "", PlayerSpec.parse(member.spec).label)[:24]
            folder = self.work_dir / "battles" / f"br{iteration}" / f"r{k}" / f"vs{index}-{label}"
            done = self._battles_in(folder, prefix)
            if done < wanted:
                seed = int(np.random.default_rng([self.seed, iteration, k, index, done]).integers(2**31))
                self.generate_fn(candidate, member.spec, self.battle_format, wanted - done, folder,
                                           seed=seed, **self.generate_options)
                after = self._battles_in(folder, prefix)
                if after < wanted:
                    logger.warning("best response %d round %d: %d of %d battles against %s finished",
                                   iteration, k, after, wanted, member.name)
            for path in _own_files(folder / self.battle_format, prefix):
                _link(path, data / path.name)
        if not _trajectory_files(data):
            raise NashError(f"best response {iteration} round {k}: no battle of {candidate} finished, "
                            "so there is nothing to train on (see the warnings above)")

    def _battles_in(self, folder: Path, prefix: str) -> int:
        ids = set()
        for path in _own_files(folder / self.battle_format, prefix):
            ids.add(parse_trajectory_filename(path).battle_id)
        return len(ids)

    @staticmethod
    def _final_epoch(run_dir: Path, epochs: int) -> Optional[int]:
        """``epochs − 1`` if ``run_dir`` has the weights of that (its last) epoch, else None."""
        return epochs - 1 if epochs - 1 in RunLayout(run_dir).weight_epochs() else None

    def _train(self, run_dir: Path, init: Optional[str], data: Optional[Path], epochs: int) -> None:
        """Train (or resume) the run ``run_dir`` for ``epochs`` epochs from ``init``'s weights
        (None: from scratch on ``parsed_replay_dir``)."""
        layout = RunLayout(run_dir)
        resumable = layout.training_state_epochs()
        if layout.checkpoint_epochs() and not resumable:
            raise NashError(f"{run_dir} has policy weights but no complete training state to resume from; "
                            "move it away to train this round again")
        spaces: Dict[str, Any] = {}
        if init is not None:
            source = PlayerSpec.parse(init)
            info = get_pretrained_model(source.target) if source.kind == "pretrained" else RunInfo.load(source.target)
            spaces = dict(obs_space=info.observation_space, action_space=info.action_space,
                          reward_function=info.reward_function, tokenizer=info.tokenizer)
        if data is None:  # the base run
            sources: Dict[str, Any] = dict(parsed_replay_dir=self.parsed_replay_dir, formats=self.formats)
        elif self.parsed_replay_dir is None:
            sources = dict(parsed_replay_dir=str(data), formats=(self.battle_format,))
        else:
            sources = dict(parsed_replay_dir=self.parsed_replay_dir, custom_replay_dir=str(data),
                           custom_replay_sample_weight=1.0 - self.replay_weight, formats=(self.battle_format,))
        config = TrainConfig(
            run_name=run_dir.name, save_dir=str(run_dir.parent), model_gin_config=self.model_gin_config,
            train_gin_config=self.train_gin_config, gin_bindings=self.gin_bindings,
            ckpt=resumable[-1] if resumable else None,
            init_from_checkpoint=None if resumable else init, epochs=epochs, steps_per_epoch=self.steps_per_epoch,
            batch_size_per_gpu=self.batch_size, grad_accum=self.grad_accum, dloader_workers=self.dloader_workers,
            ckpt_interval=1, eval_gens=(), log=self.log, seed=self.seed, **sources, **spaces)
        logger.info("training %s (%s)", run_dir, f"resuming at epoch {resumable[-1]}" if resumable else
                    f"from {init}" if init else "from scratch")
        self.train_fn(config)
        if self._final_epoch(run_dir, epochs) is None:
            raise NashError(f"training {run_dir} ended without weights for its last epoch {epochs - 1}")
