"""``python -m metamon.rl.validate``: pre-flight checks of a training command, before a long run.

Takes the ``train`` command's flags (``--run_name`` / ``--save_dir`` may be left out; then the
run-directory check is skipped) and writes nothing where they point::

    python -m metamon.rl.validate --run_name r --save_dir runs --model_gin_config gemma_agent.gin \\
        --train_gin_config il.gin --parsed_replay_dir DATA --formats gen9ou [--batch_sizes 1 2 4 8]

and prints a checklist, one line per check (``ok`` / ``warn`` / ``FAIL`` / ``skip``, with what
was found or what is wrong), in this order; a check whose prerequisite failed is skipped:

1. ``flags``: the flags make a valid :class:`~metamon.rl.train_config.TrainConfig`.
2. ``run directory``: a new run's folder holds no checkpoints; ``--ckpt N`` names an existing
   complete checkpoint.
3. ``server``: with validation battles (``--eval_gens`` not empty), ``--eval_server_url``
   answers, or (without it) Node.js and the local Showdown install are there.
4. ``gin``: the model and training gin files resolve and parse with every ``--gin_bindings``.
5. ``spaces``: the observation space, action space, reward function and tokenizer exist.
6. ``data``: the data folders exist and ``--data_files`` files spread over the dataset load (a
   file that fails is named with its reason; ``warn`` when only some fail).
7. ``model``: the experiment builds exactly as training builds it (in a temporary folder),
   with its parameter counts and device.
8. ``forward/backward``: one real batch of ``--batch_size_per_gpu`` windows goes forward and
   backward with a finite loss and finite gradients.
9. ``memory``: training memory per batch size (``--batch_sizes``), estimated by
   :func:`metamon.rl.find_batch_size.measure_memory` (weights, gradients + AdamW state, saved
   activations fitted at two sizes), against the free memory of the device.

Exit code 0 when no check failed, 1 otherwise (the failed checks say why), 2 for flags the
train parser rejects.

Public API: :func:`validate` ``(config, batch_sizes=..., data_files=...) -> list[Check]`` and
:class:`Check` (``name``, ``status``, ``detail``).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from metamon.amago.utils import AmagoError
from metamon.data.parsed_replay_dset import ParsedReplayDataset
from metamon.errors import MetamonError
from metamon.formats import check_format
from metamon.interface import TokenizedObservationSpace, get_action_space, get_observation_space, get_reward_function
from metamon.rl.agent_config import configure_agent
from metamon.rl.find_batch_size import (
    available_memory_bytes,
    draw_batch,
    format_bytes,
    forward_backward,
    measure_memory,
    scratch_experiment,
    train_argv,
)
from metamon.rl.run_dir import available_epochs
from metamon.rl.train import config_from_argv, resolve_configs
from metamon.rl.train_config import TrainConfig
from metamon.server import check_server, install_hint, showdown_dir
from metamon.tokenizer import get_tokenizer

__all__ = ["Check", "STATUSES", "validate", "main"]

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
STATUSES = (OK, WARN, FAIL, SKIP)
DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32)
DEFAULT_DATA_FILES = 16
_CHECK_ERRORS = (MetamonError, AmagoError, OSError, ValueError, TypeError, KeyError, RuntimeError)


@dataclasses.dataclass
class Check:
    """One line of the checklist: ``status`` is one of :data:`STATUSES`."""

    name: str
    status: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.status:^4s}] {self.name}: {self.detail}"


def _run_directory(config: TrainConfig, named: bool) -> tuple[str, str]:
    if not named:
        return SKIP, "no --run_name / --save_dir given"
    run_dir = Path(config.save_dir) / config.run_name
    epochs = available_epochs(run_dir) if run_dir.is_dir() else []
    if config.ckpt is None:
        if epochs:
            return FAIL, (f"{run_dir} already holds checkpoints {epochs}: pass --ckpt N to resume, "
                          "or another --run_name")
        return OK, f"{run_dir} (new run)"
    if config.ckpt not in epochs:
        return FAIL, f"--ckpt {config.ckpt}: {run_dir} has complete checkpoints {epochs or 'none'}"
    return OK, f"resume {run_dir} from checkpoint {config.ckpt}"


def _server(config: TrainConfig) -> tuple[str, str]:
    if not config.eval_gens:
        return SKIP, "no validation battles (--eval_gens is empty)"
    formats = [check_format(f"gen{g}ou") for g in config.eval_gens]
    if config.eval_server_url is not None:
        host, port = check_server(config.eval_server_url, timeout=10.0)
        return OK, f"a Showdown server answers at {host}:{port} (validation in {', '.join(formats)})"
    if shutil.which("node") is None:
        return FAIL, f"validation starts a local Showdown server, but Node.js is not on PATH; {install_hint()}"
    package = showdown_dir()
    if not (package / "pokemon-showdown").exists():
        return FAIL, f"validation starts a local Showdown server, not installed in {package}; {install_hint()}"
    return OK, f"a local server will be started from {package} (validation in {', '.join(formats)})"


def _gin(config: TrainConfig) -> tuple[str, str]:
    model_gin, train_gin = resolve_configs(config.model_gin_config, config.train_gin_config)
    structure = configure_agent([model_gin, train_gin], bindings=config.gin_bindings, tokenizer=config.tokenizer)
    encoder = structure["tstep_encoder_type"].__name__
    return OK, (f"{model_gin.name} + {train_gin.name}, {len(config.gin_bindings)} binding(s); "
                f"{encoder}, max_seq_len {structure['max_seq_len']}")


def _spaces(config: TrainConfig):
    obs_space = TokenizedObservationSpace(get_observation_space(config.obs_space), get_tokenizer(config.tokenizer))
    return obs_space, get_action_space(config.action_space), get_reward_function(config.reward_function)


def _data(config: TrainConfig, n_files: int) -> tuple[str, str]:
    obs_space, action_space, reward = _spaces(config)
    roots = [config.parsed_replay_dir] + ([config.custom_replay_dir] if config.custom_replay_dir else [])
    details, status = [], OK
    for root in roots:
        dataset = ParsedReplayDataset(obs_space, action_space, reward, dset_root=root, formats=config.formats,
                                      wins_losses_both=config.wins_losses_both)
        k = min(n_files, len(dataset))
        paths = [dataset.filenames[i * len(dataset) // k] for i in range(k)]  # spread over the index
        bad = {}
        for path in paths:
            try:
                dataset.load_item(path)
            except MetamonError as error:
                bad[path] = str(error)
        where = dataset.dset_root
        if len(bad) == len(paths):
            first = next(iter(bad.items()))
            return FAIL, f"{where}: none of {len(paths)} sampled files loads, e.g. {first[0]}: {first[1]}"
        if bad:
            status = WARN
            first = next(iter(bad.items()))
            details.append(f"{where}: {len(bad)} of {len(paths)} sampled files fail, e.g. {first[0]}: {first[1]}")
        else:
            details.append(f"{where}: {len(dataset)} files ({', '.join(dataset.formats)}); "
                           f"{len(paths)} sampled files load")
        if dataset.skipped:
            status = WARN
            details.append(f"skipped while indexing {dict(dataset.skipped)}")
    return status, "; ".join(details)


def _model(experiment) -> tuple[str, str]:
    policy = experiment.policy
    total = sum(p.numel() for p in policy.parameters())
    trained = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    return OK, (f"{type(policy).__name__} with {type(policy.tstep_encoder).__name__} on "
                f"{experiment.accelerator.device}: {total:,d} parameters, {trained:,d} trained")


def _forward_backward(experiment, batch_size: int) -> tuple[str, str]:
    batch = draw_batch(experiment, batch_size)
    loss = forward_backward(experiment, batch)
    bad = [n for n, p in experiment.policy.named_parameters()
           if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
    experiment.optimizer.zero_grad(set_to_none=True)
    shape = f"batch {batch.batch_size} x {batch.seq_len} timesteps"
    if not math.isfinite(loss):
        return FAIL, f"{shape}: the loss is {loss}"
    if bad:
        return FAIL, f"{shape}: non-finite gradients in {bad[:3]}"
    return OK, f"{shape}: loss {loss:.4f}, gradients finite"


def _memory(experiment, batch_sizes: Sequence[int]) -> tuple[str, str]:
    model = measure_memory(experiment)
    device = experiment.accelerator.device
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        budget = f"{format_bytes(free)} free of {format_bytes(total)} on {device}"
    else:
        free = available_memory_bytes()
        budget = f"{format_bytes(free)} of RAM free"
    def fits(b: int) -> bool:  # the weights are resident already: they are not in the free memory
        return model.total(b) - model.weights <= free

    rows = [f"b={b}: {format_bytes(model.total(b))}{'' if fits(b) else ' (too much)'}" for b in batch_sizes]
    status = OK if fits(min(batch_sizes)) else FAIL
    return status, (f"{'; '.join(rows)} (weights {format_bytes(model.weights)}, gradients + AdamW "
                    f"{format_bytes(model.training_state)}, saved activations "
                    f"{format_bytes(model.per_sample)} per sequence); {budget}; estimates, see "
                    "python -m metamon.rl.find_batch_size")


def _run(name: str, check: Callable[[], tuple[str, str]]) -> Check:
    try:
        status, detail = check()
    except _CHECK_ERRORS as error:
        status, detail = FAIL, f"{type(error).__name__}: {error}"
    return Check(name, status, detail)


def validate(
    config: TrainConfig,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    data_files: int = DEFAULT_DATA_FILES,
    named: bool = True,
    report: Optional[Callable[[Check], None]] = None,
) -> list[Check]:
    """Run the checks of the module docstring on ``config`` (``named``: whether ``run_name`` /
    ``save_dir`` are the user's, so that the run directory is checked); ``report`` is called
    with each :class:`Check` as soon as it is done. Nothing is written outside a temporary folder."""
    checks: list[Check] = []

    def add(check: Check) -> Check:
        checks.append(check)
        if report is not None:
            report(check)
        return check

    def skipped(name: str, needs: str) -> Check:
        return add(Check(name, SKIP, f"needs the {needs} check to pass"))

    add(_run("run directory", lambda: _run_directory(config, named)))
    add(_run("server", lambda: _server(config)))
    gin_ok = add(_run("gin", lambda: _gin(config))).status == OK
    spaces = _run("spaces", lambda: (OK, ", ".join(type(x).__name__ for x in _spaces(config))))
    spaces_ok = add(spaces).status == OK
    data_ok = spaces_ok and add(_run("data", lambda: _data(config, data_files))).status != FAIL
    if not spaces_ok:
        skipped("data", "spaces")
    if not (gin_ok and data_ok):
        for name in ("model", "forward/backward", "memory"):
            skipped(name, "gin and data")
        return checks
    with tempfile.TemporaryDirectory(prefix="metamon_validate_") as folder:
        experiment = None

        def build() -> tuple[str, str]:
            nonlocal experiment
            experiment = scratch_experiment(config, folder)
            return _model(experiment)

        if add(_run("model", build)).status != OK:
            skipped("forward/backward", "model")
            skipped("memory", "model")
            return checks
        try:
            step = add(_run("forward/backward", lambda: _forward_backward(experiment, config.batch_size_per_gpu)))
            if step.status == OK:
                add(_run("memory", lambda: _memory(experiment, batch_sizes)))
            else:
                skipped("memory", "forward/backward")
        finally:
            experiment.close()
    return checks


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m metamon.rl.validate", description=__doc__.split("\n")[0],
                                epilog="Every other flag is a `python -m metamon.rl.train` flag.")
    p.add_argument("--batch_sizes", type=int, nargs="+", default=list(DEFAULT_BATCH_SIZES),
                   help="batch sizes of the memory table")
    p.add_argument("--data_files", type=int, default=DEFAULT_DATA_FILES, help="files to load in the data check")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args, rest = _parser().parse_known_args(argv)
    if any(b < 1 for b in args.batch_sizes) or args.data_files < 1:
        print("error: --batch_sizes and --data_files must be >= 1", file=sys.stderr)
        return 2
    given = {a.split("=")[0] for a in rest}
    named = {"--run_name", "--save_dir"} <= given
    try:
        config = config_from_argv(train_argv(rest))
    except MetamonError as error:
        print(Check("flags", FAIL, str(error)))
        return 1
    print(Check("flags", OK, f"{config.model_gin_config} + {config.train_gin_config}, "
                             f"batch {config.batch_size_per_gpu} x grad_accum {config.grad_accum}"), flush=True)
    checks = validate(config, args.batch_sizes, args.data_files, named=named,
                      report=lambda check: print(check, flush=True))
    failed = [c.name for c in checks if c.status == FAIL]
    print(f"\n{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "\nall checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
