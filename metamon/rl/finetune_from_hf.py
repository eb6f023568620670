"""``python -m metamon.rl.finetune_from_hf``: continue training a published metamon model (or one
of our own runs) on your trajectories, in a new run directory.

metamon's command line works as it is::

    python -m metamon.rl.finetune_from_hf --finetune_from_model SyntheticRLV2 \\
        --run_name my_finetune --save_dir runs --custom_replay_dir my_selfplay \\
        --custom_replay_weight 0.5 --formats gen1ou --epochs 10 --eval_gens 1 [--log]

and so does a run of ours as the source: ``--finetune_from_run runs/my_run --ckpt 4`` (instead of
``--finetune_from_model``; exactly one of the two).

What happens (metamon's steps, with the differences marked):

1. **The source fixes the architecture and the spaces.** A published model's registry entry
   (:mod:`metamon.rl.pretrained`) gives the observation space, action space, tokenizer, reward,
   its bindings (:meth:`~metamon.rl.pretrained.PretrainedModel.gin_bindings`: tokenizer,
   ``SigmaReparam.fast_init``, attention type, the entry's ``gin_overrides``), its model gin
   and its training gin. A run gives the same from its ``run.json`` and ``config.gin`` (which
   holds the model and the training gin; it is checked with :mod:`metamon.rl.safe_gin` first,
   since a run folder may come from elsewhere).
2. **Gin, in metamon's order:** the bindings, then the model gin, then ``--train_gin_config``
   (or else the source's training gin), then ``--gin_bindings`` (ours). Only hyperparameters
   should change; the weights must fit the agent these build (checked, every key named).
3. **Data:** the parsed replays (``--parsed_replay_dir``, default the cache) mixed per trajectory
   with ``--custom_replay_dir``, restricted to ``--formats``. **``--reward_function`` changes the
   TRAINING rewards**: the dataset computes every transition's reward with it. metamon (and the
   seeds' fork) build the dataset with the source's reward and use ``--reward_function`` only for
   the validation envs; here both the data and the evaluation players use it.
4. **Weights:** every tensor of the source checkpoint (online and target actor and critics,
   PopArt statistics, spectral-norm vectors) is loaded strictly before the first update, through
   ``train --init_from_checkpoint pretrained:NAME@N`` / ``run:DIR@N``
   (:func:`metamon.rl.train.build_experiment`). The optimizer, the learning-rate warm-up, the
   epoch counter and the data start fresh. ``--finetune_from_checkpoint N`` (alias ``--ckpt``):
   the source's epoch; for a published model ``None`` or ``0`` means its default checkpoint (as in
   metamon), for a run ``None`` means its latest epoch.
5. **A new run directory** ``{save_dir}/{run_name}/`` in our layout (``run.json``, ``config.gin``,
   ``ckpts/policy_weights/policy_epoch_{N}.safetensors`` with N counted from 0, every
   ``--ckpt_interval`` = 2 epochs as in metamon, and the last). ``run.json`` names the source
   (``finetuned_from``: ``pretrained:NAME@N`` or ``run:/abs/DIR@N``; ``init_from``: the weights
   file) and the command line (``command``); ``config.gin`` starts with the source's bindings,
   so :func:`metamon.rl.run_dir.load_agent` (``evaluate``, ``run:`` players, a later finetune)
   rebuilds the same agent.
6. **Evaluation** in the formats ``gen{g}ou`` for ``--eval_gens`` (metamon's default ``1 2 3 4
   9``; the flag with no values turns evaluation off), or in ``--battle_format F ...`` (the seeds'
   flag) instead, against ``--eval_opponents`` (default: the heuristic composite set), teams
   from ``--team_set``. After training, the last epoch plays ``--eval_battles`` battles per
   (format, opponent); the table is printed and written to ``{run_dir}/eval.json``.
   ``--val_battles N`` also validates at the start of every epoch (metamon's ``val_interval=1``),
   logged under ``val`` in ``logs/metrics.csv``.

metamon's offline settings kept: no environment collection, ``start_learning_at_epoch = 0``,
sampled actions in evaluation, ``ckpt_interval = 2``, ``mixed_precision = "no"`` (unless the
training gin sets it). Defaults chosen here for CPU machines: ``--val_battles 0`` (metamon
validates 300 steps per epoch; on a CPU those battles cost more than a small epoch) and one
evaluation after training instead. metamon's other defaults (``--epochs 10 --steps_per_epoch
25000 --batch_size_per_gpu 12 --dloader_workers 10``) are kept so its commands mean the same; on a
CPU pass e.g. ``--steps_per_epoch 200 --batch_size_per_gpu 4 --dloader_workers 0``.
``--async_env_mp_context`` is accepted and has no effect (no subprocess environments).

Bad input ends the CLI with one line on stderr and exit status 2, before anything is written.
From Python: :func:`prepare` returns the experiment (not started) and the evaluation plan,
:func:`finetune` runs the whole thing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

import torch

from metamon.amago.utils import AmagoError
from metamon.baselines import HEURISTIC_COMPOSITE_BASELINES
from metamon.battles import ConnectionLostError, check_spec
from metamon.errors import MetamonError
from metamon.files import atomic_write
from metamon.formats import check_format
from metamon.logs import add_log_level_argument, configure_logging
from metamon.rl import MetamonRLError
from metamon.rl.evaluate import evaluate_against_baselines, format_table, json_safe, showdown_url
from metamon.rl.experiment import MetamonAMAGOExperiment
from metamon.rl.pretrained import get_pretrained_model
from metamon.rl.run_dir import CONFIG_FILE, RunInfo, available_epochs, load_agent, run_path
from metamon.rl.safe_gin import check_gin
from metamon.rl.train import build_experiment, train_experiment, usage_error
from metamon.rl.train_config import DEFAULT_EVAL_GENS, WINS_LOSSES_BOTH, TrainConfig
from metamon.rl.validation import BattleValidation

__all__ = ["EVAL_FILE", "FinetuneSource", "EvaluationPlan", "evaluate_run", "finetune", "main", "prepare",
           "resolve_source"]

PROG = "python -m metamon.rl.finetune_from_hf"
EVAL_FILE = "eval.json"  # the evaluation after training, in the run directory


@dataclass
class FinetuneSource:
    """Where the weights, architecture and spaces come from.

    ``spec`` is the ``--init_from_checkpoint`` value (``pretrained:NAME@N`` / ``run:DIR@N``);
    ``model_gin`` / ``train_gin`` the gin files (paths); ``gin_params`` the bindings bound before
    them; the rest are registry names."""

    spec: str
    model_gin: str
    train_gin: str
    gin_params: dict
    observation_space: str
    action_space: str
    reward_function: str
    tokenizer: Optional[str]


@dataclass
class EvaluationPlan:
    """The evaluation after training: ``formats`` (empty: none), ``opponents`` (player specs),
    ``battles`` per (format, opponent), ``team_set``, ``server_url`` (None: a local server)."""

    formats: List[str] = field(default_factory=list)
    opponents: List[str] = field(default_factory=list)
    battles: int = 10
    team_set: str = "builtin"
    server_url: Optional[str] = None

    @property
    def enabled(self) -> bool:
        return bool(self.formats and self.opponents and self.battles >= 1)


def _parser() -> argparse.ArgumentParser:
    d = TrainConfig
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--run_name", required=True, help="the new run: SAVE_DIR/RUN_NAME/")
    p.add_argument("--save_dir", required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--finetune_from_model", default=None, help="a published model's registry name")
    source.add_argument("--finetune_from_run", default=None, help="one of our run directories (SAVE_DIR/RUN_NAME)")
    p.add_argument("--finetune_from_checkpoint", "--ckpt", dest="checkpoint", type=int, default=None,
                   help="the source's epoch (a model: default checkpoint for none or 0; a run: latest for none)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--steps_per_epoch", type=int, default=d.steps_per_epoch, help="optimizer updates per epoch")
    p.add_argument("--batch_size_per_gpu", type=int, default=d.batch_size_per_gpu)
    p.add_argument("--grad_accum", type=int, default=d.grad_accum)
    p.add_argument("--train_gin_config", default=None,
                   help="training gin (bare name in metamon/configs/training/ or a path); default: the source's")
    p.add_argument("--gin_bindings", action="append", default=[], help='"X.y = z" after the gin files, repeatable')
    p.add_argument("--reward_function", default=None,
                   help="the reward of the TRAINING data (the dataset's rewards) and of the evaluation players; "
                   "default: the source's. (metamon's finetune_from_hf only changes validation with it)")
    p.add_argument("--dloader_workers", type=int, default=d.dloader_workers)
    p.add_argument("--parsed_replay_dir", default=None, help="root of <format>/ folders (default: the cache)")
    p.add_argument("--custom_replay_dir", default=None, help="a second root of <format>/ folders, mixed in")
    p.add_argument("--custom_replay_weight", "--custom_replay_sample_weight", dest="custom_replay_weight",
                   type=float, default=d.custom_replay_sample_weight,
                   help="share of trajectories drawn from --custom_replay_dir "
                   "(with --replay_weight: a relative weight)")
    p.add_argument("--replay_weight", type=float, default=None,
                   help="relative weight of --parsed_replay_dir against --custom_replay_weight "
                   "(default: 1 - custom_replay_weight, metamon 1.4's mixture)")
    p.add_argument("--wins_losses_both", default=d.wins_losses_both, choices=WINS_LOSSES_BOTH)
    p.add_argument("--featurized_cache", default=None, metavar="DIR",
                   help="keep each trajectory file's featurization in DIR for later epochs (not in metamon)")
    p.add_argument("--formats", nargs="+", default=None, help="battle formats of the training data (default: all)")
    p.add_argument("--async_env_mp_context", default="forkserver", help="metamon's flag: accepted, no effect here")
    p.add_argument("--eval_gens", type=int, nargs="*", default=None,
                   help=f"evaluate in gen{{g}}ou (default: {' '.join(map(str, DEFAULT_EVAL_GENS))}); "
                   "the flag with no values turns evaluation off")
    p.add_argument("--battle_format", nargs="+", default=None,
                   help="evaluate in these formats instead of gen{g}ou (the seeds' flag)")
    p.add_argument("--team_set", default="builtin", help="teams of the evaluation battles")
    p.add_argument("--eval_opponents", nargs="+", default=None, help="default: the heuristic composite set")
    p.add_argument("--eval_battles", type=int, default=10,
                   help="battles per (format, opponent) after training (0: none)")
    p.add_argument("--val_battles", type=int, default=0,
                   help="battles per (format, opponent) at the start of every epoch (default 0: none)")
    p.add_argument("--eval_server_url", default=None, help="default: start a local server")
    p.add_argument("--ckpt_interval", type=int, default=d.ckpt_interval,
                   help="checkpoint every N epochs (and the last)")
    p.add_argument("--log_interval", type=int, default=d.log_interval, help="log every N micro-batches")
    p.add_argument("--log", action="store_true", help="log to wandb (WANDB_MODE=offline works)")
    p.add_argument("--seed", type=int, default=None)
    add_log_level_argument(p)
    return p


def resolve_source(finetune_from_model: Optional[str] = None, finetune_from_run: Optional[str] = None,
                   checkpoint: Optional[int] = None, train_gin_config: Optional[str] = None) -> FinetuneSource:
    """The :class:`FinetuneSource` of a published model (registry name) or of a run directory
    (exactly one), at ``checkpoint`` (module docstring, step 4), with ``train_gin_config``
    replacing the source's training gin when given. Reads only (a published model's weights are
    downloaded later, when the experiment is built)."""
    if (finetune_from_model is None) == (finetune_from_run is None):
        raise MetamonRLError("give exactly one source: --finetune_from_model NAME or --finetune_from_run DIR")
    if checkpoint is not None and checkpoint < 0:
        raise MetamonRLError(f"--finetune_from_checkpoint must be >= 0, got {checkpoint}")
    if finetune_from_model is not None:
        model = get_pretrained_model(finetune_from_model)
        epoch = model.default_checkpoint if not checkpoint else checkpoint
        return FinetuneSource(
            spec=f"pretrained:{finetune_from_model}@{epoch}",
            model_gin=str(model.model_gin_config),
            train_gin=train_gin_config or str(model.train_gin_config),
            gin_params=dict(model.gin_bindings()),
            observation_space=model.observation_space,
            action_space=model.action_space,
            reward_function=model.reward_function,
            tokenizer=model.tokenizer,
        )
    run_dir = Path(finetune_from_run).expanduser()
    info = RunInfo.load(run_dir)
    epochs = available_epochs(run_dir)
    if not epochs:
        raise MetamonRLError(f"--finetune_from_run {run_dir} holds no policy checkpoint")
    epoch = epochs[-1] if checkpoint is None else checkpoint
    if epoch not in epochs:
        raise MetamonRLError(f"--finetune_from_run {run_dir}: no epoch {epoch} (available epochs: {epochs})")
    config = run_dir / CONFIG_FILE
    if not config.is_file():
        raise MetamonRLError(f"{config} does not exist: the run's gin configuration is needed to rebuild its agent")
    check_gin(config.read_text(encoding="utf-8"), str(config))  # a run folder is data: no code from its gin
    return FinetuneSource(
        spec=f"run:{run_dir.resolve()}@{epoch}",
        model_gin=str(config),
        train_gin=train_gin_config or str(config),  # config.gin holds the run's training gin too
        gin_params={},
        observation_space=info.observation_space,
        action_space=info.action_space,
        reward_function=info.reward_function,
        tokenizer=info.tokenizer,
    )


def _mixture_weight(custom: float, replay: Optional[float]) -> float:
    """The custom data's share: ``custom`` (metamon 1.4: weights ``[1 - w, w]``), or with
    ``--replay_weight`` the normalised ``custom / (replay + custom)`` (relative weights)."""
    if replay is None:
        if not 0.0 <= custom <= 1.0:
            raise MetamonRLError(
                f"--custom_replay_weight {custom} must be in [0, 1] (the share of custom trajectories); "
                "give --replay_weight too for relative weights"
            )
        return custom
    if custom < 0 or replay < 0 or custom + replay <= 0:
        raise MetamonRLError(
            f"--replay_weight {replay} and --custom_replay_weight {custom} must be >= 0 and not both 0"
        )
    return custom / (replay + custom)


def _evaluation_formats(eval_gens: Optional[Sequence[int]], battle_format: Optional[Sequence[str]]) -> List[str]:
    if battle_format is not None:
        if eval_gens is not None:
            raise MetamonRLError("give --eval_gens or --battle_format (formats to evaluate in), not both")
        return [check_format(f) for f in battle_format]
    gens = DEFAULT_EVAL_GENS if eval_gens is None else eval_gens
    return [check_format(f"gen{g}ou") for g in gens]


def prepare(argv: Optional[Sequence[str]] = None) -> tuple[MetamonAMAGOExperiment, EvaluationPlan]:
    """Parse ``argv`` (``sys.argv[1:]`` when None), check everything, write the new run's
    ``run.json`` and ``config.gin``, and return the experiment (not started; its
    ``init_weights`` is the source checkpoint) and the evaluation after training."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    return _prepare(args, argv)


def _prepare(args, argv: Sequence[str]) -> tuple[MetamonAMAGOExperiment, EvaluationPlan]:
    for name in ("eval_battles", "val_battles"):
        if getattr(args, name) < 0:
            raise MetamonRLError(f"--{name} must be >= 0, got {getattr(args, name)}")
    formats = _evaluation_formats(args.eval_gens, args.battle_format)
    opponents = list(args.eval_opponents or HEURISTIC_COMPOSITE_BASELINES)
    for opponent in opponents:
        check_spec(opponent)
    run_path(args.save_dir, args.run_name)  # a bad --run_name fails before any download
    source = resolve_source(args.finetune_from_model, args.finetune_from_run, args.checkpoint, args.train_gin_config)
    config = TrainConfig(
        run_name=args.run_name, save_dir=args.save_dir, model_gin_config=source.model_gin,
        train_gin_config=source.train_gin, gin_bindings=args.gin_bindings, init_from_checkpoint=source.spec,
        epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, batch_size_per_gpu=args.batch_size_per_gpu,
        grad_accum=args.grad_accum, formats=args.formats, parsed_replay_dir=args.parsed_replay_dir,
        custom_replay_dir=args.custom_replay_dir,
        custom_replay_sample_weight=_mixture_weight(args.custom_replay_weight, args.replay_weight),
        wins_losses_both=args.wins_losses_both, featurized_cache=args.featurized_cache,
        obs_space=source.observation_space,
        action_space=source.action_space, reward_function=args.reward_function or source.reward_function,
        tokenizer=source.tokenizer, dloader_workers=args.dloader_workers, ckpt_interval=args.ckpt_interval,
        log_interval=args.log_interval, eval_gens=(), eval_server_url=args.eval_server_url, log=args.log,
        seed=args.seed,
    )
    plan = EvaluationPlan(formats=formats, opponents=opponents, battles=args.eval_battles, team_set=args.team_set,
                          server_url=args.eval_server_url)
    command = shlex.join(PROG.split() + list(argv))
    experiment = build_experiment(config, gin_params=source.gin_params, command=command)
    if args.val_battles and formats:
        info = RunInfo(observation_space=config.obs_space, action_space=config.action_space,
                       reward_function=config.reward_function, tokenizer=config.tokenizer, formats=list(formats))
        validation = BattleValidation(info, formats, opponents, args.val_battles, args.eval_server_url,
                                      team_set=args.team_set)
        validation.check()
        experiment.configure_validation(validation, close=validation.close)
        experiment.val_interval = 1  # metamon validates every epoch
    return experiment, plan


def evaluate_run(run_dir, plan: EvaluationPlan, epoch: Optional[int] = None,
                 device: Optional[str] = None) -> List[dict]:
    """Battle ``plan`` with the run's ``epoch`` (default: the latest) on ``device`` (default: cuda
    when available), print the table and write it to ``{run_dir}/eval.json``; returns the rows
    (none when the plan is disabled)."""
    if not plan.enabled:
        return []
    agent, info = load_agent(run_dir, epoch, device=device or ("cuda" if torch.cuda.is_available() else "cpu"))
    epoch = available_epochs(run_dir)[-1] if epoch is None else epoch
    rows: List[dict] = []
    with showdown_url(plan.server_url) as url:
        for battle_format in plan.formats:
            rows += evaluate_against_baselines(agent, info, battle_format, plan.opponents, plan.battles, url,
                                               team_set=plan.team_set, progress=False)
    print(format_table(rows))
    payload = {"epoch": epoch, "team_set": plan.team_set, "opponents": plan.opponents, "rows": rows}
    atomic_write(Path(run_dir) / EVAL_FILE, json.dumps(json_safe(payload), indent=2) + "\n")
    return rows


def finetune(argv: Optional[Sequence[str]] = None) -> Path:
    """The whole finetune of ``argv``: :func:`prepare`, train, evaluate. Returns the run directory."""
    experiment, plan = prepare(argv)
    run_dir = experiment.run_dir
    train_experiment(experiment)
    evaluate_run(run_dir, plan)
    return run_dir


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The CLI: bad input stops it with one line on stderr and exit status 2 (nothing written);
    a Showdown server lost during the evaluation, with exit status 1."""
    try:
        experiment, plan = prepare(argv)
    except (MetamonError, AmagoError, OSError) as error:
        raise usage_error(error) from None
    try:
        train_experiment(experiment)
        evaluate_run(experiment.run_dir, plan)
    except ConnectionLostError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (MetamonError, AmagoError) as error:
        raise usage_error(error) from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
