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
:data:`metamon.rl.TRAINING_CONFIG_DIR`) or given as paths. Everything that can be wrong is checked before training starts:
data folders and formats, gin files and every binding, the run directory (a new run never
overwrites an existing one; ``--ckpt N`` resumes run ``--run_name`` at checkpoint N).

What a run writes (``{save_dir}/{run_name}/``): ``run.json`` (observation space, action space,
reward function, tokenizer, formats), ``config.gin`` (the gin inputs), ``ckpts/`` (checkpoints,
the operative gin config), ``logs/metrics.csv`` and, with ``--log``, ``wandb_logs/``.
Multi-GPU / multi-node: ``accelerate launch -m metamon.rl.train ...``.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Optional, Sequence

from metamon.amago.utils import AmagoError
from metamon.errors import MetamonError
from metamon.rl import MODEL_CONFIG_DIR, TRAINING_CONFIG_DIR

__all__ = ["main", "resolve_configs"]

DEFAULT_EVAL_GENS = (1, 2, 3, 4, 9)
PROJECT_CONFIGURABLES = ("metamon.rl.actors", "metamon.rl.experiment")


def _parser() -> argparse.ArgumentParser:
    from metamon.interface import DefaultActionSpace, DefaultShapedReward, TeamPreviewObservationSpace
    from metamon.tokenizer import DEFAULT_TOKENIZER

    p = argparse.ArgumentParser(prog="python -m metamon.rl.train", description=__doc__.split("\n")[0])
    p.add_argument("--run_name", required=True)
    p.add_argument("--save_dir", required=True, help="runs go to SAVE_DIR/RUN_NAME/")
    p.add_argument("--model_gin_config", required=True, help="bare name in metamon/configs/models/ or a path")
    p.add_argument("--train_gin_config", required=True, help="bare name in metamon/configs/training/ or a path")
    p.add_argument("--gin_bindings", action="append", default=[], help='"X.y = z", repeatable')
    p.add_argument("--ckpt", type=int, default=None, help="resume RUN_NAME from checkpoint epoch N")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--steps_per_epoch", type=int, default=25_000, help="optimizer updates per epoch")
    p.add_argument("--batch_size_per_gpu", type=int, default=12)
    p.add_argument("--grad_accum", type=int, default=1)
    p.add_argument("--formats", nargs="+", default=None, help="battle formats (default: all supported)")
    p.add_argument("--parsed_replay_dir", default=None, help="root of <format>/ folders (default: the cache)")
    p.add_argument("--custom_replay_dir", default=None, help="a second root of <format>/ folders")
    p.add_argument("--custom_replay_sample_weight", type=float, default=0.25)
    p.add_argument("--wins_losses_both", default="both", choices=["wins", "losses", "both"])
    p.add_argument("--obs_space", default=TeamPreviewObservationSpace.__name__)
    p.add_argument("--action_space", default=DefaultActionSpace.__name__)
    p.add_argument("--reward_function", default=DefaultShapedReward.__name__)
    p.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    p.add_argument("--dloader_workers", type=int, default=10)
    p.add_argument("--ckpt_interval", type=int, default=2, help="checkpoint every N epochs (and the last)")
    p.add_argument("--log_interval", type=int, default=300, help="log every N micro-batches")
    p.add_argument(
        "--eval_gens", type=int, nargs="*", default=list(DEFAULT_EVAL_GENS),
        help="validate in gen{g}ou after each epoch; give the flag with no values to turn it off",
    )
    p.add_argument("--eval_opponents", nargs="+", default=None, help="default: the heuristic composite set")
    p.add_argument("--eval_battles", type=int, default=10, help="battles per (format, opponent)")
    p.add_argument("--eval_server_url", default=None, help="default: start a local server")
    p.add_argument("--log", action="store_true", help="log to wandb (WANDB_MODE=offline works)")
    p.add_argument("--seed", type=int, default=None)
    return p


def resolve_configs(model: str, training: str) -> tuple[Path, Path]:
    """The model and training gin files: bare names in :data:`~metamon.rl.MODEL_CONFIG_DIR` /
    :data:`~metamon.rl.TRAINING_CONFIG_DIR` (the package's ``metamon/configs/{models,training}/``)
    or paths."""
    from metamon.amago.cli_utils import resolve_gin_file

    return (
        resolve_gin_file(model, [MODEL_CONFIG_DIR]),
        resolve_gin_file(training, [TRAINING_CONFIG_DIR]),
    )


def _spaces(args):
    from metamon.interface import (
        TokenizedObservationSpace,
        get_action_space,
        get_observation_space,
        get_reward_function,
    )
    from metamon.tokenizer import get_tokenizer

    obs_space = TokenizedObservationSpace(get_observation_space(args.obs_space), get_tokenizer(args.tokenizer))
    return obs_space, get_action_space(args.action_space), get_reward_function(args.reward_function)


def _datasets(args, obs_space, action_space, reward_function):
    """metamon's parsed-replay dataset (+ the custom one, mixed per trajectory) for AMAGO."""
    from metamon.data.mixture import MixtureOfDatasets
    from metamon.data.parsed_replay_dset import ParsedReplayDataset
    from metamon.rl.dataset import MetamonAMAGODataset

    def parsed(root):
        return ParsedReplayDataset(
            obs_space, action_space, reward_function, dset_root=root, formats=args.formats,
            wins_losses_both=args.wins_losses_both, max_seq_len=None, verbose=True,
        )

    data = parsed(args.parsed_replay_dir)
    if args.custom_replay_dir is not None:
        w = args.custom_replay_sample_weight
        if not 0.0 <= w <= 1.0:
            raise MetamonError(f"--custom_replay_sample_weight must be in [0, 1], got {w}")
        data = MixtureOfDatasets([data, parsed(args.custom_replay_dir)], [1.0 - w, w], seed=args.seed or 0)
    return MetamonAMAGODataset(data, action_space)


def _check_args(args) -> None:
    for name in ("epochs", "steps_per_epoch", "batch_size_per_gpu", "grad_accum", "ckpt_interval", "log_interval"):
        if getattr(args, name) < 1:
            raise MetamonError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.dloader_workers < 0:
        raise MetamonError(f"--dloader_workers must be >= 0, got {args.dloader_workers}")


def _check_run_dir(run_dir: Path, ckpt: Optional[int]) -> None:
    """A new run never reuses a folder that has checkpoints; a resume needs the run to exist."""
    from metamon.rl.run_dir import available_epochs

    if ckpt is None:
        epochs = available_epochs(run_dir)
        if epochs:
            raise MetamonError(
                f"{run_dir} already holds checkpoints {epochs}: pass --ckpt N to "
                "resume it, or choose another --run_name"
            )
        return
    if not run_dir.is_dir():
        raise MetamonError(f"cannot resume: run directory {run_dir} does not exist")


def _gin_inputs(model_gin: Path, train_gin: Path, bindings: Sequence[str]) -> str:
    parts = [f"# {model_gin.name}\n{model_gin.read_text()}", f"# {train_gin.name}\n{train_gin.read_text()}"]
    if bindings:
        parts.append("# --gin_bindings\n" + "\n".join(bindings))
    return "\n\n".join(parts) + "\n"


def build_experiment(args):
    """Parse the configs, check everything, and build the (not yet started) experiment."""
    import gin
    from gymnasium import spaces

    from metamon.amago.cli_utils import use_config
    from metamon.baselines import HEURISTIC_COMPOSITE_BASELINES
    from metamon.formats import check_format
    from metamon.rl.dataset import obs_gym_space
    from metamon.rl.experiment import MetamonAMAGOExperiment
    from metamon.rl.run_dir import RunInfo, tokenizer_bindings, write_run_files

    _check_args(args)
    run_dir = Path(args.save_dir) / args.run_name
    _check_run_dir(run_dir, args.ckpt)
    model_gin, train_gin = resolve_configs(args.model_gin_config, args.train_gin_config)
    eval_formats = [check_format(f"gen{g}ou") for g in args.eval_gens]

    obs_space, action_space, reward_function = _spaces(args)
    for module in PROJECT_CONFIGURABLES:  # registered before parsing, as gin needs
        importlib.import_module(module)
    gin_text = model_gin.read_text() + "\n".join(args.gin_bindings)

    gin.clear_config()
    use_config(
        tokenizer_bindings(args.tokenizer, gin_text),
        [str(model_gin), str(train_gin)],
        finalize=False,
        bindings=args.gin_bindings,
    )
    dataset = _datasets(args, obs_space, action_space, reward_function)

    info = RunInfo(
        observation_space=args.obs_space,
        action_space=args.action_space,
        reward_function=args.reward_function,
        tokenizer=args.tokenizer,
        formats=sorted(dataset.formats) if hasattr(dataset, "formats") else list(args.formats or []),
    )
    experiment = MetamonAMAGOExperiment(
        run_name=args.run_name,
        ckpt_base_dir=args.save_dir,
        dataset=dataset,
        obs_space=obs_gym_space(obs_space, action_space),
        action_space=spaces.Discrete(action_space.gym_space.n),
        epochs=args.epochs,
        train_batches_per_epoch=args.steps_per_epoch * args.grad_accum,
        batches_per_update=args.grad_accum,
        batch_size=args.batch_size_per_gpu,
        dloader_workers=args.dloader_workers,
        log_to_wandb=args.log,
        log_interval=args.log_interval,
        ckpt_interval=args.ckpt_interval,
        val_interval=1 if eval_formats else None,
        seed=args.seed,
    )
    experiment.configure_validation(
        info,
        formats=eval_formats,
        opponents=args.eval_opponents or HEURISTIC_COMPOSITE_BASELINES,
        battles=args.eval_battles,
        server_url=args.eval_server_url,
    )
    info.max_seq_len = experiment.max_seq_len
    if experiment.accelerator.is_main_process:
        write_run_files(run_dir, info, _gin_inputs(model_gin, train_gin, args.gin_bindings))
    return experiment


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        experiment = build_experiment(args)
    except (MetamonError, AmagoError) as error:
        raise SystemExit(f"error: {error}") from None
    try:
        experiment.start()
        if args.ckpt is not None:
            experiment.load_checkpoint(args.ckpt)
        experiment.learn()
    finally:
        experiment.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
