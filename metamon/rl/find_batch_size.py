"""``python -m metamon.rl.find_batch_size``: the largest ``--batch_size_per_gpu`` that fits.

Takes the ``train`` command's flags (``--run_name`` / ``--save_dir`` may be left out: nothing is
written where they point; the experiment is built in a temporary folder, without validation
battles)::

    python -m metamon.rl.find_batch_size --model_gin_config gemma_agent.gin --train_gin_config il.gin \\
        --parsed_replay_dir DATA --formats gen9ou [--max_batch 1024] [--safety 0.9] [--estimate]

Two ways to answer, chosen by the device the experiment trains on:

* **CUDA, by trial.** A batch fits when one forward + backward of ``b`` training windows (drawn
  as the ``DataLoader`` draws them) runs without ``torch.cuda.OutOfMemoryError``, while a block
  the size of the AdamW state (two fp32 moments per trained parameter, allocated only at the
  first optimizer step) is held. :func:`largest_fitting` doubles ``b`` from 1 until a failure
  or ``--max_batch``, then bisects between the last success and the first failure; after an
  out-of-memory error the gradients are dropped and the CUDA cache emptied before the next
  trial. The reported size is ``floor(safety x found)``: windows are padded to the longest in
  the batch, so another draw can be larger.
* **CPU (or ``--estimate``), from memory.** The bytes of the tensors autograd saves for the
  backward pass (distinct storages, parameters left out) are measured at two batch sizes
  (``--measure_sizes``, default 1 and 2) and fitted by a line, ``activations(b) = a + s x b``
  (:class:`MemoryModel`). The largest ``b`` with
  ``gradients + AdamW state + activations(b) <= safety x available`` is reported, where
  ``available`` is the free RAM now (``psutil.virtual_memory().available``, else
  ``MemAvailable`` of ``/proc/meminfo``; the weights are already loaded, so they are not in
  it). Temporaries that are not saved for the backward pass are not counted: ``safety``
  (default 0.9) leaves room for them.

Public API::

    largest_fitting(fits, start=1, limit=1024) -> int            (0 when fits(start) is False)
    scratch_experiment(config, folder) -> started experiment     (temporary run dir, no validation)
    draw_batch(experiment, batch_size) -> Batch                   on the experiment's device
    forward_backward(experiment, batch) -> float                  the total loss; gradients kept
    saved_activation_bytes(experiment, batch) -> int
    measure_memory(experiment, sizes=(1, 2)) -> MemoryModel
    available_memory_bytes() -> int
    format_bytes(n) -> str                                        "1.50 GiB" / "12.0 MiB"
    cuda_fits(experiment, batch_size) -> bool
    find_batch_size(config, max_batch=1024, safety=0.9, estimate=False, measure_sizes=(1, 2)) -> dict

Exit codes: 0 found, 1 not even a batch of 1 fits, 2 bad input (flags, gin, data).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

try:
    import psutil  # installed with accelerate; optional: /proc/meminfo is read without it
except ImportError:
    psutil = None

from metamon.amago.loading import Batch, RLData_pad_collate
from metamon.amago.utils import AmagoError
from metamon.errors import MetamonError
from metamon.files import atomic_write
from metamon.rl import MetamonRLError
from metamon.rl.experiment import MetamonAMAGOExperiment
from metamon.rl.train import build_experiment, config_from_argv
from metamon.rl.train_config import TrainConfig

__all__ = [
    "MemoryModel",
    "available_memory_bytes",
    "cuda_fits",
    "draw_batch",
    "find_batch_size",
    "format_bytes",
    "forward_backward",
    "largest_fitting",
    "main",
    "measure_memory",
    "saved_activation_bytes",
    "scratch_experiment",
    "train_argv",
]

DEFAULT_MAX_BATCH = 1024
DEFAULT_SAFETY = 0.9
DEFAULT_MEASURE_SIZES = (1, 2)
ADAM_MOMENTS = 2  # AdamW keeps exp_avg and exp_avg_sq per trained parameter
_PLACEHOLDERS = {"--run_name": "find_batch_size", "--save_dir": "."}  # nothing is written there


def largest_fitting(fits: Callable[[int], bool], start: int = 1, limit: int = DEFAULT_MAX_BATCH) -> int:
    """The largest ``b`` in ``[start, limit]`` with ``fits(b)``, for a monotone ``fits`` (if
    ``b`` fits, every smaller size does); 0 when ``fits(start)`` is False.

    Doubling ``start, 2 start, 4 start, ...`` (capped at ``limit``) until the first failure,
    then bisection between the last success and that failure: at most about
    ``2 log2(limit / start) + 1`` calls, each size tried at most once.
    """
    if not (isinstance(start, int) and isinstance(limit, int) and 1 <= start <= limit):
        raise MetamonRLError(f"largest_fitting needs ints 1 <= start <= limit, got start={start!r}, limit={limit!r}")
    if not fits(start):
        return 0
    good, bad = start, None
    while bad is None:
        if good == limit:
            return good
        trial = min(2 * good, limit)
        if fits(trial):
            good = trial
        else:
            bad = trial
    while bad - good > 1:
        middle = (good + bad) // 2
        if fits(middle):
            good = middle
        else:
            bad = middle
    return good


def train_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with placeholders for ``--run_name`` / ``--save_dir`` when they are missing
    (the train parser requires them; these tools write nothing there)."""
    argv = list(argv)
    for flag, value in _PLACEHOLDERS.items():
        if not any(a == flag or a.startswith(flag + "=") for a in argv):
            argv += [flag, value]
    return argv


def scratch_experiment(config: TrainConfig, folder) -> MetamonAMAGOExperiment:
    """``build_experiment`` + ``start()`` of ``config`` with its run directory in ``folder`` (a
    temporary folder the caller owns), no validation battles, no wandb, no DataLoader workers
    and no resume: the model, optimizer and data exactly as training builds them."""
    scratch = dataclasses.replace(config, save_dir=str(folder), ckpt=None, eval_gens=(), log=False,
                                  dloader_workers=0)
    experiment = build_experiment(scratch)
    experiment.start()
    return experiment


def draw_batch(experiment, batch_size: int) -> Batch:
    """``batch_size`` random training windows, padded and collated as the ``DataLoader`` does,
    on the experiment's device."""
    dataset = experiment.dataset
    windows = [dataset[i] for i in range(batch_size)]  # RLDataset items ignore the index: random draws
    return RLData_pad_collate(windows).to(experiment.accelerator.device)


def forward_backward(experiment, batch: Batch) -> float:
    """One training forward + backward of ``batch`` (no optimizer step); the gradients stay in
    the parameters' ``.grad``. Returns the total loss."""
    experiment.policy_aclr.train()
    loss = experiment.compute_loss(batch, log_step=False)["Total Loss"]
    experiment.accelerator.backward(loss)
    return float(loss.detach())


def _parameter_storages(module: torch.nn.Module) -> set:
    return {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers()]}


def saved_activation_bytes(experiment, batch: Batch) -> int:
    """Bytes of the distinct tensor storages autograd saves for the backward pass while the
    forward pass of ``batch`` runs (parameters and buffers left out); runs the backward pass
    too and drops the gradients."""
    weights = _parameter_storages(experiment.policy)
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    experiment.policy_aclr.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = experiment.compute_loss(batch, log_step=False)["Total Loss"]
    experiment.accelerator.backward(loss)
    experiment.optimizer.zero_grad(set_to_none=True)
    return sum(saved.values())


@dataclasses.dataclass
class MemoryModel:
    """Training memory as a function of the batch size ``b`` (bytes)::

        weights          parameters + buffers (resident once the model is built)
        training_state   gradients + AdamW moments of the trained parameters
        activations(b) = intercept + per_sample x b     (fitted on ``measured``)
        total(b)       = weights + training_state + activations(b)
    """

    weights: int
    training_state: int
    intercept: float
    per_sample: float
    measured: dict  # batch size -> saved activation bytes

    def activations(self, batch_size: int) -> float:
        return max(0.0, self.intercept + self.per_sample * batch_size)

    def total(self, batch_size: int) -> float:
        return self.weights + self.training_state + self.activations(batch_size)

    def largest_within(self, budget: float) -> int:
        """The largest ``b >= 0`` with ``training_state + activations(b) <= budget`` (the
        weights are not in the budget: they are already resident)."""
        room = budget - self.training_state - max(0.0, self.intercept)
        if room < 0:
            return 0
        if self.per_sample <= 0:
            return sys.maxsize
        return int(room // self.per_sample)


def measure_memory(experiment, sizes: Sequence[int] = DEFAULT_MEASURE_SIZES) -> MemoryModel:
    """:class:`MemoryModel` of ``experiment``'s agent from saved activations at two batch sizes
    (one fresh random draw per size)."""
    sizes = sorted(set(int(s) for s in sizes))
    if len(sizes) != 2 or sizes[0] < 1:
        raise MetamonRLError(f"measure the memory at two different batch sizes >= 1, got {list(sizes)}")
    measured = {b: saved_activation_bytes(experiment, draw_batch(experiment, b)) for b in sizes}
    (b1, a1), (b2, a2) = sorted(measured.items())
    per_sample = (a2 - a1) / (b2 - b1)
    if per_sample <= 0:  # a second draw of shorter windows: fall back to the larger size's average
        per_sample, intercept = a2 / b2, 0.0
    else:
        intercept = a1 - per_sample * b1
    policy = experiment.policy
    weights = sum(t.numel() * t.element_size() for t in [*policy.parameters(), *policy.buffers()])
    trained = sum(p.numel() * p.element_size() for p in policy.parameters() if p.requires_grad)
    return MemoryModel(weights=weights, training_state=trained * (1 + ADAM_MOMENTS), intercept=intercept,
                       per_sample=per_sample, measured=measured)


def available_memory_bytes() -> int:
    """Free RAM now: ``psutil.virtual_memory().available`` when psutil is installed, else
    ``MemAvailable`` from ``/proc/meminfo``."""
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    raise MetamonRLError("cannot tell the free memory: no psutil and no MemAvailable in /proc/meminfo")


def _release(experiment) -> None:
    experiment.optimizer.zero_grad(set_to_none=True)
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def cuda_fits(experiment, batch_size: int) -> bool:
    """True when one forward + backward of ``batch_size`` windows runs without running out of
    CUDA memory (gradients dropped and the cache emptied afterwards, either way)."""
    fits = True
    try:
        forward_backward(experiment, draw_batch(experiment, batch_size))
    except torch.cuda.OutOfMemoryError:
        fits = False
    _release(experiment)  # outside the except block: the exception's frames are gone by now
    return fits


def _adam_state_bytes(experiment) -> int:
    return ADAM_MOMENTS * sum(p.numel() * p.element_size() for p in experiment.policy.parameters() if p.requires_grad)


def find_batch_size(
    config: TrainConfig,
    max_batch: int = DEFAULT_MAX_BATCH,
    safety: float = DEFAULT_SAFETY,
    estimate: bool = False,
    measure_sizes: Sequence[int] = DEFAULT_MEASURE_SIZES,
) -> dict:
    """The answer for ``config`` as a dict: ``method`` ("trial" on CUDA, "estimate" otherwise),
    ``device``, ``batch_size`` (what to pass as ``--batch_size_per_gpu``), and for a trial
    ``largest_fitting`` and ``peak_bytes`` (CUDA max allocated during the search), for an
    estimate ``available_bytes``, ``per_sample_bytes``, ``fixed_bytes`` and ``measured``."""
    if not (0.0 < safety <= 1.0):
        raise MetamonRLError(f"safety must be in (0, 1], got {safety!r}")
    with tempfile.TemporaryDirectory(prefix="metamon_find_batch_size_") as folder:
        experiment = scratch_experiment(config, folder)
        device = experiment.accelerator.device
        try:
            if device.type == "cuda" and not estimate:
                return _by_trial(experiment, max_batch, safety)
            return _by_estimate(experiment, max_batch, safety, measure_sizes)
        finally:
            experiment.close()


def _by_trial(experiment, max_batch: int, safety: float) -> dict:
    device = experiment.accelerator.device
    reserve = torch.empty(_adam_state_bytes(experiment), dtype=torch.uint8, device=device)
    torch.cuda.reset_peak_memory_stats(device)
    found = largest_fitting(lambda b: cuda_fits(experiment, b), 1, max_batch)
    del reserve
    return dict(method="trial", device=str(device), largest_fitting=found,
                batch_size=max(1, math.floor(safety * found)) if found else 0,
                peak_bytes=int(torch.cuda.max_memory_allocated(device)), max_batch=max_batch)


def _by_estimate(experiment, max_batch: int, safety: float, measure_sizes) -> dict:
    model = measure_memory(experiment, measure_sizes)
    if experiment.accelerator.device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(experiment.accelerator.device)
        available = int(free)
    else:
        available = available_memory_bytes()
    largest = min(model.largest_within(safety * available), max_batch)
    return dict(method="estimate", device=str(experiment.accelerator.device), batch_size=largest,
                available_bytes=available, per_sample_bytes=model.per_sample,
                fixed_bytes=model.training_state + max(0.0, model.intercept), weights_bytes=model.weights,
                measured={str(b): v for b, v in model.measured.items()}, max_batch=max_batch)


def format_bytes(n: float) -> str:
    """``n`` bytes as GiB (from 1 GiB on) or MiB, two significant decimals."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _report(result: dict) -> str:
    if result["method"] == "trial":
        return (f"{result['device']}: the largest batch that fit was {result['largest_fitting']} "
                f"(trials up to {result['max_batch']}; peak {format_bytes(result['peak_bytes'])}); "
                f"use --batch_size_per_gpu {result['batch_size']}")
    return (f"{result['device']}: saved activations {format_bytes(result['per_sample_bytes'])} per sequence "
            f"(measured {', '.join(f'b={b}: {format_bytes(v)}' for b, v in result['measured'].items())}), "
            f"gradients + optimizer state {format_bytes(result['fixed_bytes'])}, free memory "
            f"{format_bytes(result['available_bytes'])}: estimated largest batch {result['batch_size']}; "
            f"use --batch_size_per_gpu {result['batch_size']} (an estimate: check it with a short run)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m metamon.rl.find_batch_size", description=__doc__.split("\n")[0],
                                epilog="Every other flag is a `python -m metamon.rl.train` flag.")
    p.add_argument("--max_batch", type=int, default=DEFAULT_MAX_BATCH, help="largest size tried or reported")
    p.add_argument("--safety", type=float, default=DEFAULT_SAFETY,
                   help="fraction of the found size (trial) or of the free memory (estimate) to use")
    p.add_argument("--estimate", action="store_true", help="estimate from memory even on CUDA")
    p.add_argument("--measure_sizes", type=int, nargs=2, default=list(DEFAULT_MEASURE_SIZES),
                   help="the two batch sizes the estimate measures")
    p.add_argument("--json_out", type=Path, default=None, help="also write the result as JSON")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args, rest = _parser().parse_known_args(argv)
    try:
        config = config_from_argv(train_argv(rest))
        result = find_batch_size(config, max_batch=args.max_batch, safety=args.safety, estimate=args.estimate,
                                 measure_sizes=args.measure_sizes)
    except (MetamonError, AmagoError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(_report(result))
    if args.json_out is not None:
        atomic_write(args.json_out, json.dumps(result, indent=1) + "\n")
    return 0 if result["batch_size"] > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
