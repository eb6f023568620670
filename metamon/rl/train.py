"""``python -m metamon.rl.train``: offline RL / imitation on parsed-replay trajectories.

The flags are metamon's (``--run_name --model_gin_config --train_gin_config --save_dir --ckpt
--epochs ...``) plus ``--gin_bindings "X.y = z"`` (repeatable, applied after the gin files),
``--steps_per_epoch`` and a few evaluation options. Example (the CPU demo)::

    python -m metamon.rl.train --run_name demo --save_dir runs \\
        --model_gin_config tiny_agent.gin --train_gin_config il.gin \\
        --parsed_replay_dir data/demo --formats gen1ou --epochs 2 --steps_per_epoch 200 \\
        --batch_size_per_gpu 16 --eval_gens

Gin files are found by bare name in the package's ``metamon/configs/models/`` (model,
:data:`metamon.rl.MODEL_CONFIG_DIR`) and ``metamon/configs/training/`` (training,
:data:`metamon.rl.TRAINING_CONFIG_DIR`) or given as paths. Everything that can be wrong is checked
before training starts: data folders and formats, gin files and every binding (names and value types), the save
directory, the run directory (a new run never overwrites an existing one; ``--ckpt N`` resumes run
``--run_name`` at checkpoint N). Bad input ends the CLI with one line on stderr and exit code 2.

Resuming checks first and writes last: epoch N must have a complete training state, and the run's
``run.json`` fields (spaces, reward, tokenizer, formats, ``max_seq_len``) and the agent's
architecture (the state-dict keys and shapes of the agent these flags build, against the
checkpoint's) must be the same, or the resume is refused naming each difference (``field: old →
new``); only then are ``run.json`` (keeping the run's creation date) and ``config.gin`` written.

From Python, fill a :class:`~metamon.rl.train_config.TrainConfig` (one field per flag, same
defaults) and call :func:`run_training` (or :func:`build_experiment`, then
:func:`train_experiment`, to reach the experiment in between).

What a run writes (``{save_dir}/{run_name}/``): ``run.json`` (observation space, action space,
reward function, tokenizer, formats), ``config.gin`` (the gin inputs), ``ckpts/`` (checkpoints,
the operative gin config), ``logs/metrics.csv`` and, with ``--log``, ``wandb_logs/``.
Multi-GPU / multi-node: ``accelerate launch -m metamon.rl.train ...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from gymnasium import spaces

from metamon.amago.agent import SCHEDULE_STATE_PREFIXES
from metamon.amago.checkpoints import MODEL_FILE, tensor_shapes, weights_differences
from metamon.amago.cli_utils import resolve_gin_file
from metamon.amago.run_layout import RunLayout
from metamon.amago.utils import AmagoError
from metamon.baselines import HEURISTIC_COMPOSITE_BASELINES
from metamon.battles import PlayerSpec
from metamon.data.mixture import MixtureOfDatasets
from metamon.data.parsed_replay_dset import ParsedReplayDataset
from metamon.errors import MetamonError
from metamon.formats import check_format
from metamon.interface import TokenizedObservationSpace, get_action_space, get_observation_space, get_reward_function
from metamon.logs import add_log_level_argument, configure_logging
from metamon.rl import MODEL_CONFIG_DIR, TRAINING_CONFIG_DIR
from metamon.rl.agent_config import configure_agent
from metamon.rl.dataset import MetamonAMAGODataset, obs_gym_space
from metamon.rl.experiment import MetamonAMAGOExperiment
from metamon.rl.legacy_encoder import adopt_legacy_encoder
from metamon.rl.pretrained import get_pretrained_model
from metamon.rl.run_dir import (
    RUN_INFO_FILE,
    RunInfo,
    available_epochs,
    check_output_dir,
    gin_binding_lines,
    policy_weights_path,
    run_path,
    write_run_files,
)
from metamon.rl.train_config import WINS_LOSSES_BOTH, TrainConfig
from metamon.rl.validation import BattleValidation
from metamon.tokenizer import get_tokenizer

__all__ = [
    "main",
    "resolve_configs",
    "TrainConfig",
    "config_from_argv",
    "build_experiment",
    "train_experiment",
    "run_training",
    "usage_error",
]


def _parser() -> argparse.ArgumentParser:
    """One flag per :class:`TrainConfig` field, with the field's name and default."""
    d = TrainConfig
    p = argparse.ArgumentParser(prog="python -m metamon.rl.train", description=__doc__.split("\n")[0])
    p.add_argument("--run_name", required=True)
    p.add_argument("--save_dir", required=True, help="runs go to SAVE_DIR/RUN_NAME/")
    p.add_argument("--model_gin_config", required=True, help="bare name in metamon/configs/models/ or a path")
    p.add_argument("--train_gin_config", required=True, help="bare name in metamon/configs/training/ or a path")
    p.add_argument("--gin_bindings", action="append", default=list(d.gin_bindings), help='"X.y = z", repeatable')
    p.add_argument("--ckpt", type=int, default=d.ckpt, help="resume RUN_NAME from checkpoint epoch N")
    p.add_argument("--init_from_checkpoint", default=d.init_from_checkpoint,
                   help="start a new run from other weights: a run, run:DIR@EPOCH (run:DIR: its latest), or a "
                   "published model, pretrained:NAME@EPOCH (pretrained:NAME: its default checkpoint)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--steps_per_epoch", type=int, default=d.steps_per_epoch, help="optimizer updates per epoch")
    p.add_argument("--batch_size_per_gpu", type=int, default=d.batch_size_per_gpu)
    p.add_argument("--grad_accum", type=int, default=d.grad_accum)
    p.add_argument("--formats", nargs="+", default=d.formats, help="battle formats (default: all supported)")
    p.add_argument("--parsed_replay_dir", default=d.parsed_replay_dir,
                   help="root of <format>/ folders (default: the cache)")
    p.add_argument("--custom_replay_dir", default=d.custom_replay_dir, help="a second root of <format>/ folders")
    p.add_argument("--custom_replay_weight", "--custom_replay_sample_weight", type=float,
                   dest="custom_replay_sample_weight", default=d.custom_replay_sample_weight,
                   help="share of trajectories drawn from --custom_replay_dir (metamon 1.5 name; "
                   "--custom_replay_sample_weight is metamon 1.4's)")
    p.add_argument("--wins_losses_both", default=d.wins_losses_both, choices=WINS_LOSSES_BOTH)
    p.add_argument("--featurized_cache", default=d.featurized_cache, metavar="DIR",
                   help="keep each trajectory file's featurization in DIR and reuse it in later epochs "
                   "(reads of unchanged files about 10x faster; default: featurize on every read)")
    p.add_argument("--obs_space", default=d.obs_space)
    p.add_argument("--action_space", default=d.action_space)
    p.add_argument("--reward_function", default=d.reward_function)
    p.add_argument("--tokenizer", default=d.tokenizer)
    p.add_argument("--dloader_workers", type=int, default=d.dloader_workers)
    p.add_argument("--ckpt_interval", type=int, default=d.ckpt_interval,
                   help="checkpoint every N epochs (and the last)")
    p.add_argument("--log_interval", type=int, default=d.log_interval, help="log every N micro-batches")
    p.add_argument(
        "--eval_gens", type=int, nargs="*", default=list(d.eval_gens),
        help="validate in gen{g}ou after each epoch; give the flag with no values to turn it off",
    )
    p.add_argument("--eval_opponents", nargs="+", default=d.eval_opponents,
                   help="default: the heuristic composite set")
    p.add_argument("--eval_battles", type=int, default=d.eval_battles, help="battles per (format, opponent)")
    p.add_argument("--eval_server_url", default=d.eval_server_url, help="default: start a local server")
    p.add_argument("--log", action="store_true", help="log to wandb (WANDB_MODE=offline works)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.epilog = "--log_level {quiet,debug,info,warning,error,critical}: what is logged (default quiet)"
    return p


def _parse(argv: Optional[Sequence[str]]) -> tuple[TrainConfig, str]:
    """The :class:`TrainConfig` of ``argv`` and its ``--log_level`` (a CLI option, not a field)."""
    levels = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # "--log" is a field
    add_log_level_argument(levels)
    known, rest = levels.parse_known_args(argv)
    return TrainConfig(**vars(_parser().parse_args(rest))), known.log_level


def config_from_argv(argv: Optional[Sequence[str]] = None) -> TrainConfig:
    """The command line (``sys.argv[1:]`` when None) as a :class:`TrainConfig`. Bad flags exit
    (argparse); bad values raise :class:`~metamon.errors.MetamonError` naming the field."""
    return _parse(argv)[0]


def resolve_configs(model: str, training: str) -> tuple[Path, Path]:
    """The model and training gin files: bare names in :data:`~metamon.rl.MODEL_CONFIG_DIR` /
    :data:`~metamon.rl.TRAINING_CONFIG_DIR` (the package's ``metamon/configs/{models,training}/``)
    or paths."""
    return (
        resolve_gin_file(model, [MODEL_CONFIG_DIR]),
        resolve_gin_file(training, [TRAINING_CONFIG_DIR]),
    )


def _spaces(config: TrainConfig):
    obs_space = TokenizedObservationSpace(get_observation_space(config.obs_space), get_tokenizer(config.tokenizer))
    return obs_space, get_action_space(config.action_space), get_reward_function(config.reward_function)


def _datasets(config: TrainConfig, obs_space, action_space, reward_function) -> MetamonAMAGODataset:
    """metamon's parsed-replay dataset (+ the custom one, mixed per trajectory) for AMAGO."""

    def parsed(root):
        return ParsedReplayDataset(
            obs_space, action_space, reward_function, dset_root=root, formats=config.formats,
            wins_losses_both=config.wins_losses_both, max_seq_len=None, verbose=True,
            featurized_cache=config.featurized_cache,
        )

    data = parsed(config.parsed_replay_dir)
    if config.custom_replay_dir is not None:
        w = config.custom_replay_sample_weight
        data = MixtureOfDatasets([data, parsed(config.custom_replay_dir)], [1.0 - w, w], seed=config.seed or 0)
    return MetamonAMAGODataset(data, action_space)


# RunInfo fields a resume must keep (amago_version and created are the run's history)
_RESUME_FIELDS = ("observation_space", "action_space", "reward_function", "tokenizer", "formats", "max_seq_len")


def _check_run_dir(run_dir: Path, ckpt: Optional[int]) -> Optional[RunInfo]:
    """A new run never reuses a folder that has checkpoints (weights or training states); a
    resume needs the run, its ``run.json`` and a complete training state for epoch ``ckpt``.
    Returns the stored :class:`RunInfo` of a resumed run (None for a new one). Reads only."""
    layout = RunLayout(run_dir)
    if ckpt is None:
        epochs = layout.checkpoint_epochs()
        if epochs:
            raise MetamonError(
                f"{run_dir} already holds checkpoints {epochs}: pass --ckpt N to "
                "resume it, or choose another --run_name"
            )
        return None
    if not run_dir.is_dir():
        raise MetamonError(f"cannot resume: run directory {run_dir} does not exist")
    resumable = layout.training_state_epochs()
    if ckpt not in resumable:
        if ckpt in layout.weight_epochs():
            why = (f"epoch {ckpt} has policy weights but no complete training state (its save was "
                   "interrupted by an older version, or the run was copied without ckpts/training_states)")
        else:
            why = f"there is no complete training state for epoch {ckpt}"
        raise MetamonError(f"cannot resume {run_dir} at --ckpt {ckpt}: {why}; resumable epochs: {resumable or 'none'}")
    return RunInfo.load(run_dir)


def _check_resume(run_dir: Path, ckpt: int, stored: RunInfo, info: RunInfo,
                  experiment: MetamonAMAGOExperiment) -> None:
    """Refuse to resume ``run_dir`` at ``ckpt`` with a setup other than the one it was trained
    with: every :data:`_RESUME_FIELDS` difference between ``stored`` and ``info`` and every
    state-dict key or shape that differs between the agent ``experiment`` builds and the
    checkpoint's weights, as ``what: old → new``. Builds one agent (on the CPU) and writes nothing."""
    differences = [
        f"{name}: {getattr(stored, name)!r} → {getattr(info, name)!r}"
        for name in _RESUME_FIELDS
        if getattr(stored, name) != getattr(info, name)
    ]
    weights = RunLayout(run_dir).training_state(ckpt) / MODEL_FILE
    _adopt_legacy_encoder(experiment, weights)
    architecture = weights_differences(experiment.build_agent(), weights)
    if architecture:
        differences.append("different architecture (checkpoint → these gin files): " + "; ".join(architecture))
    if differences:
        raise MetamonError(
            f"cannot resume {run_dir} at --ckpt {ckpt}: it was trained with another setup: "
            + " | ".join(differences)
            + ". Resume with the run's own flags and gin files (its run.json and config.gin), "
            "or train a new --run_name"
        )


def _gin_inputs(gin_files: Sequence[Path], bindings: Sequence[str], gin_params: Optional[dict] = None) -> str:
    """The text of ``config.gin``: ``gin_params`` as binding lines (first, so that the files
    override them, as when they are bound), each file's text, then ``bindings``."""
    parts = []
    if gin_params:
        parts.append("# bound before the gin files\n" + "\n".join(gin_binding_lines(gin_params)))
    parts += [f"# {path.name}\n{path.read_text()}" for path in gin_files]
    if bindings:
        parts.append("# --gin_bindings\n" + "\n".join(bindings))
    return "\n\n".join(parts) + "\n"


def build_experiment(config: TrainConfig, *, gin_params: Optional[dict] = None,
                     command: Optional[str] = None) -> MetamonAMAGOExperiment:
    """Resolve and check everything ``config`` names (save and run directory, gin files and
    bindings, formats, spaces, data; for a resume, the run's setup and architecture), then write
    ``run.json`` and ``config.gin``, and return the experiment, not yet started, with its
    validation battles configured. Nothing is written before every check has passed.

    ``gin_params`` (``{"X.y": value}``, e.g. a published model's registry bindings) are bound
    before the gin files, which override them, and written at the top of ``config.gin``;
    ``command`` (the command line that made the run) is recorded in ``run.json``. A model gin
    file that is also the training gin file (a run's own ``config.gin``) is read once."""
    check_output_dir(config.save_dir, "--save_dir")
    run_dir = run_path(config.save_dir, config.run_name)
    stored = _check_run_dir(run_dir, config.ckpt)
    model_gin, train_gin = resolve_configs(config.model_gin_config, config.train_gin_config)
    gin_files = [model_gin] if model_gin.resolve() == train_gin.resolve() else [model_gin, train_gin]
    eval_formats = [check_format(f"gen{g}ou") for g in config.eval_gens]

    obs_space, action_space, reward_function = _spaces(config)
    configure_agent(gin_files, params=gin_params, bindings=config.gin_bindings, tokenizer=config.tokenizer)
    dataset = _datasets(config, obs_space, action_space, reward_function)

    info = RunInfo(
        observation_space=config.obs_space,
        action_space=config.action_space,
        reward_function=config.reward_function,
        tokenizer=config.tokenizer,
        formats=sorted(dataset.formats),
        command=command or config.command_line(),
    )
    experiment = MetamonAMAGOExperiment(
        run_name=config.run_name,
        ckpt_base_dir=config.save_dir,
        dataset=dataset,
        obs_space=obs_gym_space(obs_space, action_space),
        action_space=spaces.Discrete(action_space.gym_space.n),
        epochs=config.epochs,
        train_batches_per_epoch=config.steps_per_epoch * config.grad_accum,
        batches_per_update=config.grad_accum,
        batch_size=config.batch_size_per_gpu,
        dloader_workers=config.dloader_workers,
        log_to_wandb=config.log,
        log_interval=config.log_interval,
        ckpt_interval=config.ckpt_interval,
        val_interval=1 if eval_formats else None,
        seed=config.seed,
    )
    validation = BattleValidation(
        info,
        formats=eval_formats,
        opponents=config.eval_opponents or HEURISTIC_COMPOSITE_BASELINES,
        battles=config.eval_battles,
        server_url=config.eval_server_url,
    )
    validation.check()  # an unreachable --eval_server_url fails now, not after the first epoch
    experiment.configure_validation(validation, close=validation.close)
    info.max_seq_len = experiment.max_seq_len
    if config.init_from_checkpoint is not None:
        experiment.init_weights, info.finetuned_from = _initial_weights(config.init_from_checkpoint, experiment, info)
        info.init_from = str(experiment.init_weights)
    if stored is not None:
        _check_resume(run_dir, config.ckpt, stored, info, experiment)
        info.created = stored.created
    if experiment.accelerator.is_main_process:
        write_run_files(run_dir, info, _gin_inputs(gin_files, config.gin_bindings, gin_params))
    return experiment


def _adopt_legacy_encoder(experiment: MetamonAMAGOExperiment, weights: Path) -> None:
    """Weights saved with this project's own encoder under its old name (``MetamonTstepEncoder``)
    make the experiment build ``ScratchTstepEncoder`` (:mod:`metamon.rl.legacy_encoder`)."""
    if weights.is_file():
        experiment.tstep_encoder_type = adopt_legacy_encoder(
            experiment.tstep_encoder_type, tensor_shapes(weights), str(weights)
        )


# what a source's spaces must share with the run that starts from its weights
_SOURCE_SPACES = ("observation_space", "action_space", "tokenizer")


def _initial_weights(spec: str, experiment: MetamonAMAGOExperiment, info: RunInfo) -> tuple[Path, str]:
    """The policy weights file that ``--init_from_checkpoint`` names and the source as a spec
    with its epoch (``run:/abs/DIR@N`` or ``pretrained:NAME@N``).

    ``run:DIR@N`` (``run:DIR``: its latest epoch) is a trained run; ``pretrained:NAME@N``
    (``pretrained:NAME``: the model's default checkpoint) a published model of
    :mod:`metamon.rl.pretrained`, downloaded on first use. The source's observation space, action
    space and tokenizer (a run's ``run.json``, a model's registry entry) must be ``info``'s, and
    its weights must fit the agent ``experiment`` builds: every difference is named. Builds one
    agent (on the CPU) and writes nothing but the download cache."""
    parsed = PlayerSpec.parse(spec)
    if parsed.kind == "pretrained":
        if parsed.epoch == 0:
            raise MetamonError(f"--init_from_checkpoint {spec}: epoch 0 is a published model's random "
                               "initialisation; leave --init_from_checkpoint out to train from scratch")
        model = get_pretrained_model(parsed.target)
        epoch = model.default_checkpoint if parsed.epoch is None else parsed.epoch
        source_info = model  # its spaces are attributes (run_info() would reconfigure gin)
        weights = model.checkpoint_path(epoch)
        source = f"pretrained:{parsed.target}@{epoch}"
    elif parsed.kind == "run":
        run_dir = Path(parsed.target).expanduser()
        epochs = available_epochs(run_dir)
        if not epochs:
            raise MetamonError(f"--init_from_checkpoint {spec}: {run_dir} holds no policy checkpoint")
        if parsed.epoch is not None and parsed.epoch not in epochs:
            raise MetamonError(f"--init_from_checkpoint {spec}: no epoch {parsed.epoch} (available epochs: {epochs})")
        epoch = epochs[-1] if parsed.epoch is None else parsed.epoch
        source_info = RunInfo.load(run_dir) if (run_dir / RUN_INFO_FILE).is_file() else None
        weights = policy_weights_path(run_dir, epoch)
        source = f"run:{run_dir.resolve()}@{epoch}"
    else:
        raise MetamonError(f"--init_from_checkpoint takes a trained run, run:DIR@EPOCH, or a published model, "
                           f"pretrained:NAME@EPOCH; got {spec!r}")
    if source_info is not None:
        spaces_differ = [f"{name}: {getattr(source_info, name)!r} → {getattr(info, name)!r}"
                         for name in _SOURCE_SPACES if getattr(source_info, name) != getattr(info, name)]
        if spaces_differ:
            raise MetamonError(f"--init_from_checkpoint {spec}: it was trained on other inputs/outputs "
                               f"(checkpoint → new): {'; '.join(spaces_differ)}")
    _adopt_legacy_encoder(experiment, Path(weights))
    differences = weights_differences(experiment.build_agent(), weights, skip_prefixes=SCHEDULE_STATE_PREFIXES)
    if differences:
        raise MetamonError(f"--init_from_checkpoint {spec}: its architecture differs from these gin files "
                           f"(checkpoint → new): {'; '.join(differences)}")
    return Path(weights).resolve(), source


def train_experiment(experiment: MetamonAMAGOExperiment, ckpt: Optional[int] = None) -> None:
    """Start ``experiment``, resume it at checkpoint epoch ``ckpt`` (if given) or load its
    ``init_weights`` (``--init_from_checkpoint``), learn, close."""
    try:
        experiment.start()
        if ckpt is not None:
            experiment.load_checkpoint(ckpt)
        elif experiment.init_weights is not None:
            experiment.load_policy_weights(experiment.init_weights)
        experiment.learn()
    finally:
        experiment.close()


def run_training(config: TrainConfig) -> None:
    """The whole run ``config`` describes: :func:`build_experiment`, then :func:`train_experiment`."""
    train_experiment(build_experiment(config), config.ckpt)


def usage_error(error: Exception) -> SystemExit:
    """``SystemExit`` with exit status 2 whose text is ``"error: <message>"``; the message is
    printed to stderr here (Python prints nothing for an int status). An ``OSError`` reads as
    ``"<reason>: <path>"``."""
    if isinstance(error, OSError) and error.strerror:
        error = f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    message = f"error: {error}"
    print(message, file=sys.stderr)
    stop = SystemExit(message)
    stop.code = 2
    return stop


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The CLI; bad input (any :class:`MetamonError` / :class:`AmagoError`, or an ``OSError``
    before training starts) stops it with one line on stderr and exit status 2."""
    try:
        config, log_level = _parse(argv)
        configure_logging(log_level)
        experiment = build_experiment(config)
    except (MetamonError, AmagoError, OSError) as error:
        raise usage_error(error) from None
    try:
        train_experiment(experiment, config.ckpt)
    except (MetamonError, AmagoError) as error:
        raise usage_error(error) from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
