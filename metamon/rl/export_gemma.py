"""``python -m metamon.rl.export_gemma``: share a trained Gemma agent's adapter and heads.

::

    python -m metamon.rl.export_gemma --run_dir runs/my_gemma_run [--ckpt N] --out DIR [--merge]

Rebuilds the agent of ``--run_dir`` at checkpoint ``N`` (default: the latest) with
:func:`metamon.rl.run_dir.load_agent` (so ``GemmaTstepEncoder.model_name`` must be loadable
here), then writes into ``DIR``::

    gemma/              GemmaTstepEncoder.save_adapter: peft's LoRA adapter
                        (adapter_config.json + adapter_model.safetensors), or with --merge the
                        base with the adapter folded in (a plain Gemma3TextModel), + the HF tokenizer
    heads.safetensors   every agent weight outside the Gemma backbone (numeric branch, text norm,
                        trajectory encoder, actor, critics, PopArt), keys as in the agent state dict
    run.json, config.gin   the run's description, to rebuild the agent

Exit code 2 on bad input (no run, no such checkpoint, not a Gemma agent).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Optional, Sequence

from metamon.amago.checkpoints import save_weights
from metamon.errors import MetamonError
from metamon.rl import MetamonRLError
from metamon.rl.gemma_encoder import GemmaTstepEncoder
from metamon.rl.run_dir import CONFIG_FILE, RUN_INFO_FILE, load_agent

__all__ = ["export_gemma", "main", "BACKBONE_PREFIX"]

BACKBONE_PREFIX = "tstep_encoder.backbone."


def export_gemma(run_dir, out_dir, epoch: Optional[int] = None, merge: bool = False) -> Path:
    """Write ``out_dir`` as in the module docstring; returns it."""
    agent, _ = load_agent(run_dir, epoch=epoch)
    if not isinstance(agent.tstep_encoder, GemmaTstepEncoder):
        raise MetamonRLError(
            f"{run_dir} trained a {type(agent.tstep_encoder).__name__}, not a GemmaTstepEncoder: nothing to export"
        )
    out = Path(out_dir)
    agent.tstep_encoder.save_adapter(out / "gemma", merge=merge)
    heads = {k: v for k, v in agent.state_dict().items() if not k.startswith(BACKBONE_PREFIX)}
    save_weights(heads, out / "heads.safetensors")
    for name in (RUN_INFO_FILE, CONFIG_FILE):
        shutil.copyfile(Path(run_dir) / name, out / name)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m metamon.rl.export_gemma", description=__doc__.split("\n")[0])
    p.add_argument("--run_dir", required=True, help="{save_dir}/{run_name} of a Gemma run")
    p.add_argument("--ckpt", type=int, default=None, help="checkpoint epoch (default: the latest)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--merge", action="store_true", help="fold the LoRA adapter into the base weights")
    args = p.parse_args(argv)
    try:
        out = export_gemma(args.run_dir, args.out, epoch=args.ckpt, merge=args.merge)
    except MetamonError as error:
        print(f"error: {error}")
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
