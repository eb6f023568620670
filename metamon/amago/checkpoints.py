"""Pickle-free, crash-safe checkpoints: model weights and the full training state.

Nothing here unpickles; every file written is either a ``.safetensors`` archive (named tensors
only) or JSON. The one foreign format read is AMAGO's / metamon's ``.pt`` policy weights
(``torch.save(agent.state_dict())``): :func:`read_weights` opens them with
``torch.load(path, map_location="cpu", weights_only=True)`` — torch's restricted unpickler, which
refuses any global other than tensors, storages and plain containers before anything is called —
and then requires a flat ``{str: Tensor}`` mapping. A nested Python value (an optimizer state dict, RNG states, ...) is
stored with a tiny codec: tensors and numpy arrays go into the ``.safetensors`` file under a
path-like name and are replaced in the JSON by a reference; tuples, dicts with non-string keys
and arrays keep their type through markers, so loading gives back the exact value.

Atomicity: a single file is written with :mod:`metamon.files` (a temporary sibling
``.{name}.<random>.tmp`` moved into place with ``os.replace``). A training-state directory is written
into a hidden staging directory ``.{name}.partial`` next to the target; ``complete.json`` is
written last, then the staging directory is renamed to the target (an existing target is first
moved aside to ``.{name}.old``, removed once the new one is in place). Killing the process at any
moment therefore leaves either no target or a complete one, and :func:`load_training_state`
refuses a directory without the marker. What a killed writer leaves behind (temporary files,
staging and ``.old`` directories) is cleaned by the next process: :func:`remove_stale_temp_files`
and :func:`recover_training_states`, which :meth:`metamon.amago.run_layout.RunLayout.recover`
runs at start-up. How the weights file and the training state of one epoch are published
together is :class:`~metamon.amago.run_layout.RunLayout`'s rule.

Training-state directory layout (``save_training_state``)::

    model.safetensors                     module state dict (see save_weights)
    optimizer.safetensors, optimizer.json every tensor of optimizer.state_dict(); the rest as JSON
    scheduler.json                        lr scheduler state dict (plus .safetensors if it holds tensors)
    rng.safetensors, rng.json             RNG states of process 0 (torch CPU, CUDA devices, numpy, random)
    rng_{i}.safetensors, rng_{i}.json     the same for process i >= 1 (multi-process runs)
    progress.json                         caller's ``extra`` (epoch, grad_update_counter, ...)
    complete.json                         written last: format version and the file list
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from metamon.amago.utils import AmagoError, amago_warning
from metamon.files import atomic_path, atomic_write

FORMAT_VERSION = 1
COMPLETE_MARKER = "complete.json"
MODEL_FILE = "model.safetensors"  # the module's state dict inside a training-state directory
SAFETENSORS_SUFFIX = ".safetensors"
TORCH_SUFFIXES = (".pt", ".pth", ".bin")  # torch.save files: read with weights_only=True, never written
STAGING_SUFFIX = ".partial"
OLD_SUFFIX = ".old"
TEMP_SUFFIX = ".tmp"  # metamon.files names its temporary siblings ".{name}.<random>.tmp"
_MAX_LISTED_KEYS = 8


# ---------------------------------------------------------------------------------------------
# single files
# ---------------------------------------------------------------------------------------------


def _atomic_save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Write named tensors to ``path`` (safetensors) atomically (``metamon.files.atomic_path``).

    Every tensor is detached, moved to CPU and cloned, so tensors sharing storage (tied weights,
    views) are stored as independent copies — safetensors refuses shared storage.
    """
    flat = {k: v.detach().to("cpu").clone().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata={"format": "pt"})


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise AmagoError(f"checkpoint file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise AmagoError(f"cannot read safetensors file {path}: {e}") from e


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise AmagoError(f"checkpoint file {path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise AmagoError(f"checkpoint file {path} is not valid JSON: {e}") from e


# ---------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------


def _state_dict_of(module_or_state_dict) -> dict[str, torch.Tensor]:
    if isinstance(module_or_state_dict, torch.nn.Module):
        state = module_or_state_dict.state_dict()
    elif isinstance(module_or_state_dict, dict):
        state = module_or_state_dict
    else:
        raise TypeError(
            f"expected an nn.Module or a state dict, got {type(module_or_state_dict).__name__}"
        )
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise AmagoError(f"state dict entries that are not tensors cannot be saved: {bad[:_MAX_LISTED_KEYS]}")
    return state


def _refuse_non_finite(state: dict[str, torch.Tensor], path: Path) -> None:
    """Raise :class:`AmagoError` naming the floating-point tensors of ``state`` that hold a NaN or
    an infinity (one host sync when every tensor is finite)."""
    floats = {k: v for k, v in state.items() if v.is_floating_point()}
    if not floats or bool(torch.stack([torch.isfinite(v).all() for v in floats.values()]).all()):
        return
    bad = [k for k, v in floats.items() if not bool(torch.isfinite(v).all())]
    raise AmagoError(
        f"refusing to save {path}: non-finite values (NaN or inf) in {len(bad)} tensors: {_first(bad)}"
        " (training diverged; nothing was written)"
    )


def save_weights(module_or_state_dict, path) -> Path:
    """Save a module's ``state_dict()`` (or a state dict) to a ``.safetensors`` file atomically.

    Shared/tied tensors are cloned into independent entries. Returns the path written. Weights
    holding a NaN or an infinity are refused (:class:`AmagoError` naming the tensors, nothing
    written): a diverged model is never checkpointed.
    """
    path = Path(path)
    state = _state_dict_of(module_or_state_dict)
    _refuse_non_finite(state, path)
    _atomic_save_tensors(state, path)
    return path


def _first(keys, n=_MAX_LISTED_KEYS) -> str:
    keys = sorted(keys)
    more = f" ... (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def _unpickler_reason(message: str) -> str:
    """The cause in torch's weights-only unpickler error (``"Unsupported global: GLOBAL x.Y"``,
    ``"Unsupported operand 110"``), without torch's advice to load the file unsafely."""
    tail = message.split("WeightsUnpickler error:", 1)[-1].strip()
    first = tail.splitlines()[0] if tail else message
    return first.split(" was not an allowed global")[0].strip()


def _read_torch_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict written by ``torch.save``, read with torch's restricted unpickler (no code runs):
    refused with :class:`AmagoError` unless it is a flat ``{str: Tensor}`` mapping."""
    if not path.is_file():
        raise AmagoError(f"checkpoint file {path} does not exist")
    try:
        try:
            loaded = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:  # a pre-zip (legacy) torch.save file cannot be memory-mapped
            if "mmap" not in str(error):
                raise
            loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # weights_only refused the file: nothing was called
        reason = _unpickler_reason(str(error))
        if not reason.startswith("Unsupported global"):
            raise AmagoError(f"cannot read the torch checkpoint {path}: not a torch.save file ({reason})") from None
        raise AmagoError(
            f"refusing to load {path}: it holds Python objects other than tensors and plain containers "
            f"({reason}; torch.load(weights_only=True) refused it, nothing in it was executed). Only "
            f"weights saved as torch.save(module.state_dict()) or as safetensors are read"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise AmagoError(f"cannot read the torch checkpoint {path}: {error}") from None
    if not isinstance(loaded, dict):
        raise AmagoError(
            f"{path} holds a {type(loaded).__name__}, not a state dict: expected the mapping "
            f"name -> tensor that torch.save(module.state_dict()) writes"
        )
    bad = [f"{k!r} ({type(v).__name__})" for k, v in loaded.items()
           if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise AmagoError(
            f"{path} is not a flat state dict (name -> tensor): entries {', '.join(bad[:_MAX_LISTED_KEYS])}"
            f"{' ...' if len(bad) > _MAX_LISTED_KEYS else ''} (a wrapper dict with an optimizer or a "
            f"config? save the module's state_dict() alone)"
        )
    return dict(loaded)


def _weights_format(path: Path) -> str:
    if path.suffix == SAFETENSORS_SUFFIX:
        return "safetensors"
    if path.suffix in TORCH_SUFFIXES:
        return "torch"
    raise AmagoError(
        f"weights file {path} has an unknown format: expected {SAFETENSORS_SUFFIX} or a torch state dict "
        f"({', '.join(TORCH_SUFFIXES)})"
    )


def read_weights(path) -> dict[str, torch.Tensor]:
    """The state dict stored in ``path``: a ``.safetensors`` file (:func:`save_weights`) or a
    state dict written by ``torch.save`` (``.pt``/``.pth``/``.bin``, e.g. metamon's published
    ``policy_epoch_{N}.pt``), read with ``torch.load(weights_only=True)``: a file holding anything
    but a flat ``{str: Tensor}`` mapping is refused without running any of its code. Tensors are on
    the CPU. Raises :class:`AmagoError` naming the file."""
    path = Path(path)
    if _weights_format(path) == "safetensors":
        return _read_tensors(path)
    return _read_torch_state_dict(path)


def _without(state: dict, skip_prefixes: tuple[str, ...]) -> dict:
    return {k: v for k, v in state.items() if not k.startswith(skip_prefixes)} if skip_prefixes else state


def load_weights(module: torch.nn.Module, path, strict: bool = True, skip_prefixes: tuple[str, ...] = ()):
    """Load the state dict in ``path`` (:func:`read_weights`: ``.safetensors`` or a ``.pt`` state
    dict) into ``module``.

    Any shape mismatch raises :class:`AmagoError`; with ``strict`` so do missing or unexpected
    keys. The error names the file and the first differing keys — the usual cause is a checkpoint
    from a different architecture (other gin config). Keys starting with one of
    ``skip_prefixes`` are left out on both sides: the module keeps its own values for them (e.g.
    a new run's training-schedule buffers). Returns torch's ``(missing_keys, unexpected_keys)``
    result of ``load_state_dict`` (the skipped keys not included).
    """
    path = Path(path)
    loaded = _without(read_weights(path), skip_prefixes)
    own = _without(module.state_dict(), skip_prefixes)
    missing = set(own) - set(loaded)
    unexpected = set(loaded) - set(own)
    shapes = [
        f"{k}: file {tuple(loaded[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(loaded))
        if loaded[k].shape != own[k].shape
    ]
    problems = []
    if shapes:
        problems.append("shape mismatch: " + "; ".join(shapes[:_MAX_LISTED_KEYS]))
    if strict and missing:
        problems.append(f"missing keys ({len(missing)}): {_first(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_first(unexpected)}")
    if problems:
        raise AmagoError(
            f"weights in {path} do not match {type(module).__name__} (checkpoint from another "
            f"architecture or config?): " + " | ".join(problems)
        )
    result = module.load_state_dict(loaded, strict=strict and not skip_prefixes)
    if not skip_prefixes:
        return result
    return type(result)([k for k in result.missing_keys if not k.startswith(skip_prefixes)], result.unexpected_keys)


def tensor_shapes(path) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of the tensors in a weights file: a ``.safetensors`` file is read from
    its header only (no tensor data); a ``.pt`` state dict is memory-mapped (:func:`read_weights`'
    checks apply). Raises :class:`AmagoError` when the file is missing or unreadable."""
    path = Path(path)
    if _weights_format(path) == "torch":
        return {k: tuple(v.shape) for k, v in _read_torch_state_dict(path).items()}
    if not path.is_file():
        raise AmagoError(f"checkpoint file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise AmagoError(f"cannot read safetensors file {path}: {e}") from e


def shape_differences(saved: dict, own: dict) -> list[str]:
    """How the ``{name: shape}`` maps ``saved`` (a checkpoint) and ``own`` (a module) differ; an
    empty list when they are equal: ``"key: (file shape) → (module shape)"`` for every shape that
    differs, then the keys found only in the checkpoint and only in the module (at most
    :data:`_MAX_LISTED_KEYS` of each, sorted)."""
    saved = {k: tuple(v) for k, v in saved.items()}
    own = {k: tuple(v) for k, v in own.items()}
    shapes = [f"{k}: {saved[k]} → {own[k]}" for k in sorted(set(saved) & set(own)) if saved[k] != own[k]]
    differences = shapes[:_MAX_LISTED_KEYS]
    if len(shapes) > _MAX_LISTED_KEYS:
        differences.append(f"... (+{len(shapes) - _MAX_LISTED_KEYS} more shapes)")
    only_saved, only_own = set(saved) - set(own), set(own) - set(saved)
    if only_saved:
        differences.append(f"only in the checkpoint ({len(only_saved)}): {_first(only_saved)}")
    if only_own:
        differences.append(f"only in the new model ({len(only_own)}): {_first(only_own)}")
    return differences


def weights_differences(module: torch.nn.Module, path, skip_prefixes: tuple[str, ...] = ()) -> list[str]:
    """:func:`shape_differences` of the weights in ``path`` (``.safetensors`` or ``.pt``) and
    ``module``'s state dict (keys and shapes only; an empty list when the weights would load),
    leaving out keys that start with one of ``skip_prefixes`` (as :func:`load_weights` does)."""
    own = {k: tuple(v.shape) for k, v in _without(_state_dict_of(module), skip_prefixes).items()}
    return shape_differences(_without(tensor_shapes(path), skip_prefixes), own)


# ---------------------------------------------------------------------------------------------
# nested values <-> (JSON, named tensors)
# ---------------------------------------------------------------------------------------------


def _encode(obj, name: str, tensors: dict[str, torch.Tensor]):
    """JSON-able form of ``obj``; tensors/arrays are moved into ``tensors`` under ``name``."""
    if isinstance(obj, torch.Tensor):
        tensors[name] = obj
        return {"__tensor__": name}
    if isinstance(obj, np.ndarray):
        # safetensors has no unsigned 32/64-bit torch dtypes everywhere: store as int64 + dtype tag
        tensors[name] = torch.from_numpy(obj.astype(np.int64) if obj.dtype.kind == "u" else obj)
        return {"__ndarray__": name, "dtype": str(obj.dtype)}
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{name}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{name}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, f"{name}.{k}", tensors) for k, v in obj.items()}
        return {
            "__items__": [
                [_encode(k, f"{name}.key{i}", tensors), _encode(v, f"{name}.{k}", tensors)]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    raise AmagoError(
        f"cannot store {type(obj).__name__} at {name!r} without pickle "
        "(only tensors, numpy arrays, numbers, strings, None, lists, tuples and dicts)"
    )


def _decode(obj, tensors: dict[str, torch.Tensor]):
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__ndarray__" in obj:
        return tensors[obj["__ndarray__"]].numpy().astype(obj["dtype"])
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__items__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def _save_value(obj, directory: Path, stem: str) -> list[str]:
    """Write ``obj`` as ``{stem}.json`` (+ ``{stem}.safetensors`` if it holds tensors)."""
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(obj, stem, tensors)
    written = []
    if tensors:
        _atomic_save_tensors(tensors, directory / f"{stem}.safetensors")
        written.append(f"{stem}.safetensors")
    atomic_write(directory / f"{stem}.json", json.dumps(encoded, indent=1))
    written.append(f"{stem}.json")
    return written


def _load_value(directory: Path, stem: str):
    encoded = _read_json(directory / f"{stem}.json")
    tensor_file = directory / f"{stem}.safetensors"
    tensors = _read_tensors(tensor_file) if tensor_file.exists() else {}
    try:
        return _decode(encoded, tensors)
    except KeyError as e:
        raise AmagoError(f"{directory / stem}.json refers to tensor {e} missing from {tensor_file}") from e


# ---------------------------------------------------------------------------------------------
# RNG states
# ---------------------------------------------------------------------------------------------


def get_rng_state() -> dict:
    """This process's RNG states: torch CPU, every CUDA device (if initialised), numpy, random."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": tuple(np.random.get_state()),
        "random": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the states captured by :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["random"])
    if "cuda" in state:
        if not torch.cuda.is_available():
            amago_warning("checkpoint holds CUDA RNG states but CUDA is not available; skipping them")
        else:
            torch.cuda.set_rng_state_all(state["cuda"])


def _rng_stem(process_index: int) -> str:
    return "rng" if process_index == 0 else f"rng_{process_index}"


# ---------------------------------------------------------------------------------------------
# training state directories
# ---------------------------------------------------------------------------------------------


def is_complete(directory) -> bool:
    """True iff ``directory`` is a finished training-state directory (has ``complete.json``)."""
    return (Path(directory) / COMPLETE_MARKER).is_file()


def _staging_dir(target: Path) -> Path:
    return target.with_name(f".{target.name}{STAGING_SUFFIX}")


def save_training_state(
    directory,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    extra: dict,
    process_index: int = 0,
    num_processes: int = 1,
    barrier: Optional[Callable[[], None]] = None,
) -> Path:
    """Atomically write everything needed to resume training exactly (layout: module docstring).

    Single process: call with the defaults. Multi-process: every process calls it with its
    ``process_index``, ``num_processes`` and a ``barrier`` (e.g. ``accelerator.wait_for_everyone``);
    each writes its own RNG file, process 0 writes the rest and publishes the directory. The
    staging directory must be on a file system shared by all processes.
    """
    if num_processes > 1 and barrier is None:
        raise AmagoError("save_training_state with num_processes > 1 needs a barrier callable")
    target = Path(directory)
    staging = _staging_dir(target)
    main = process_index == 0
    if main:
        if staging.exists():  # left over by a process killed while saving
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
    if barrier is not None:
        barrier()
    files = _save_value(get_rng_state(), staging, _rng_stem(process_index))
    if barrier is not None:
        barrier()
    if main:
        save_weights(model, staging / MODEL_FILE)
        files.append(MODEL_FILE)
        files += _save_value(optimizer.state_dict(), staging, "optimizer")
        files += _save_value(scheduler.state_dict(), staging, "scheduler")
        files += _save_value(dict(extra), staging, "progress")
        for i in range(1, num_processes):
            files += [f.name for f in staging.glob(f"{_rng_stem(i)}.*")]
        marker = {"format_version": FORMAT_VERSION, "num_processes": num_processes, "files": sorted(files)}
        atomic_write(staging / COMPLETE_MARKER, json.dumps(marker, indent=1))
        if target.exists():  # overwriting the same epoch: move the old one aside first
            old = target.with_name(f".{target.name}{OLD_SUFFIX}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old)
        else:
            os.replace(staging, target)
    if barrier is not None:
        barrier()
    return target


def _restore_param_group_types(loaded: dict, current: torch.optim.Optimizer) -> dict:
    """JSON has no tuples: give param-group values the container type the optimizer uses."""
    for group, own in zip(loaded.get("param_groups", []), current.state_dict()["param_groups"]):
        for k, v in own.items():
            if isinstance(v, tuple) and isinstance(group.get(k), list):
                group[k] = tuple(group[k])
    return loaded


def load_training_state(
    directory,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    process_index: int = 0,
    restore_rng: bool = True,
) -> dict:
    """Restore model, optimizer, scheduler and this process's RNG states; return ``extra``.

    Raises :class:`AmagoError` if the directory does not exist or is incomplete (no
    ``complete.json``: the writer was killed), or if the weights do not match ``model``.
    If the directory has no RNG file for ``process_index`` (resuming with more processes than
    were saved) the RNG state is left as is, with a warning.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise AmagoError(f"training state directory {directory} does not exist")
    if not is_complete(directory):
        raise AmagoError(
            f"training state {directory} is incomplete (no {COMPLETE_MARKER}; the writer was "
            "probably interrupted) and cannot be loaded"
        )
    load_weights(model, directory / MODEL_FILE, strict=True)
    opt_state = _load_value(directory, "optimizer")
    try:
        optimizer.load_state_dict(_restore_param_group_types(opt_state, optimizer))
    except (ValueError, KeyError) as e:
        raise AmagoError(f"optimizer state in {directory} does not fit the optimizer: {e}") from e
    scheduler.load_state_dict(_load_value(directory, "scheduler"))
    if restore_rng:
        stem = _rng_stem(process_index)
        if (directory / f"{stem}.json").is_file():
            set_rng_state(_load_value(directory, stem))
        else:
            amago_warning(f"{directory} has no RNG state for process {process_index}; RNG not restored")
    return _load_value(directory, "progress")


# ---------------------------------------------------------------------------------------------
# what a killed writer leaves behind
# ---------------------------------------------------------------------------------------------


def _older(path: Path, before: float) -> bool:
    try:
        return path.lstat().st_mtime < before
    except FileNotFoundError:
        return False


def remove_stale_temp_files(folder, before: float) -> list[str]:
    """Delete the temporary files of interrupted atomic writes in ``folder`` (hidden files named
    ``.*.tmp``, see :mod:`metamon.files`) last modified before ``before`` (a ``time.time()``
    value; younger ones may belong to a writer that is still running). Returns the names removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir()
             if p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX) and p.is_file() and _older(p, before)]
    for path in stale:
        path.unlink(missing_ok=True)
    return sorted(p.name for p in stale)


def recover_training_states(folder, before: float) -> list[str]:
    """Undo the training-state saves in ``folder`` whose writer died: staging ``.{name}.partial``
    and ``.{name}.old`` directories last modified before ``before``.

    ``.{name}.old`` (the writer died while replacing ``name``): renamed back to ``name`` when
    ``name`` is missing and it is complete, else removed. ``.{name}.partial``: always removed, even
    when complete: a state that never reached its place was never part of the run. Returns one line
    per action."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    actions = []
    for suffix in (OLD_SUFFIX, STAGING_SUFFIX):
        for entry in sorted(folder.iterdir()):
            name = entry.name
            if not (name.startswith(".") and name.endswith(suffix) and entry.is_dir() and _older(entry, before)):
                continue
            target = folder / name[1:-len(suffix)]
            if suffix == OLD_SUFFIX and not target.exists() and is_complete(entry):
                os.replace(entry, target)
                actions.append(f"restored {target.name} from {name}")
            else:
                shutil.rmtree(entry)
                actions.append(f"removed {name}")
    return actions
