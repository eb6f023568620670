"""Share trained runs on the Hugging Face Hub: push a run directory, pull it back as one.

Self-play generations and PSRO policies are run directories (:mod:`metamon.rl.run_dir`); these two
functions (and ``python -m metamon.rl.pretrained push|pull``) move them through a Hub model
repository::

    push_run("runs/gen3", "me/selfplay-gen3", private=True, epochs=[8])
    pull_run("me/selfplay-gen3", "runs/gen3_copy")       # then run:runs/gen3_copy@8, load_agent(...)

**What is uploaded** (one commit: ``HfApi.create_repo(exist_ok=True)``, then
``HfApi.upload_folder`` of a staging folder holding exactly these files)::

    run.json                                                RunInfo (spaces, tokenizer, command, ...)
    config.gin                                              the run's gin configuration
    ckpts/policy_weights/policy_epoch_{N}.safetensors       every saved epoch, or those of ``epochs``
    README.md                                               a generated model card

Nothing else: no training state (optimizer, RNG), no logs. The model card holds the training
command (``RunInfo.command``), the run's inputs, its ``config.gin`` and an evaluation table when
there are results: the training's validation battles (the last epoch's "Average Win Rate in
{format}_vs_{opponent}" rows of ``logs/metrics.csv``) and any ``--json_out`` files of
``python -m metamon.rl.evaluate`` given as ``eval_json``. The Hub token is huggingface_hub's usual
one (``HF_TOKEN``, ``hf auth login``); it is never read or printed here.

**Pulling never runs code from the repository.** Only the files above are downloaded
(``snapshot_download(allow_patterns=...)``, :func:`metamon.hub.hub_snapshot`) into a staging
folder next to ``dest``, then checked before the folder is renamed to ``dest`` (which must not
exist, or be empty): ``run.json`` must be a valid :class:`~metamon.rl.run_dir.RunInfo`;
``config.gin`` must pass :func:`metamon.rl.safe_gin.check_gin` (a foreign import, an include,
dynamic registration or a non-metamon configurable is refused naming the line); weights must be
safetensors, or ``.pt`` state dicts that ``torch.load(weights_only=True)`` reads (converted to
``.safetensors`` so that ``run:DIR@N`` finds them). :func:`~metamon.rl.run_dir.load_agent` parses
``config.gin`` with :mod:`metamon.rl.safe_gin` again when the run is loaded.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

import huggingface_hub

from metamon.amago.checkpoints import read_weights, save_weights
from metamon.amago.run_layout import RunLayout
from metamon.amago.utils import AmagoError
from metamon.files import atomic_write
from metamon.hub import hub_snapshot
from metamon.rl import MetamonRLError
from metamon.rl.run_dir import CONFIG_FILE, RUN_INFO_FILE, RunInfo, available_epochs
from metamon.rl.safe_gin import check_gin

__all__ = ["MODEL_CARD_FILE", "PULLED_PATTERNS", "model_card", "pull_run", "push_run"]

MODEL_CARD_FILE = "README.md"
WEIGHTS_FOLDER = "ckpts/policy_weights"
PULLED_PATTERNS = (
    RUN_INFO_FILE,
    CONFIG_FILE,
    MODEL_CARD_FILE,
    f"{WEIGHTS_FOLDER}/policy_epoch_*.safetensors",
    f"{WEIGHTS_FOLDER}/policy_epoch_*.pt",
)
_WIN_RATE = "Average Win Rate in "
_VALID = "Average Valid Actions in "

PathLike = Union[str, os.PathLike]


# ---------------------------------------------------------------------------------------------
# model card
# ---------------------------------------------------------------------------------------------


def _pct(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def _validation_rows(run_dir: Path) -> List[dict]:
    """The last logged validation round of ``logs/metrics.csv``: one row per (format, opponent)."""
    path = RunLayout(run_dir).metrics_csv
    if not path.is_file():
        return []
    latest: dict = {}
    with open(path, newline="", encoding="utf-8") as f:
        for record in csv.DictReader(f):
            name = record.get("metric") or ""
            if record.get("key") != "val" or not name.startswith((_WIN_RATE, _VALID)):
                continue
            field, pair = ("win_rate", name[len(_WIN_RATE):]) if name.startswith(_WIN_RATE) else \
                ("valid_actions", name[len(_VALID):])
            battle_format, _, opponent = pair.partition("_vs_")
            epoch = int(float(record["epoch"]))
            row = latest.setdefault((battle_format, opponent), {"epoch": epoch})
            if epoch > row["epoch"]:
                row.clear()
                row["epoch"] = epoch
            if epoch == row["epoch"]:
                row[field] = float(record["value"])
    return [
        {"epoch": row["epoch"], "format": fmt, "opponent": opp, "battles": "-", "win_rate": row.get("win_rate"),
         "ci": "-", "valid_actions": row.get("valid_actions"), "source": "validation (logs/metrics.csv)"}
        for (fmt, opp), row in sorted(latest.items())
    ]


def _evaluation_rows(eval_json: Iterable[PathLike]) -> List[dict]:
    """The rows of ``python -m metamon.rl.evaluate --json_out`` files."""
    rows = []
    for path in eval_json:
        path = Path(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            results = payload["rows"]
            for r in results:
                rows.append({
                    "epoch": payload.get("epoch", "-"), "format": r["format"], "opponent": r["opponent"],
                    "battles": r["battles"], "win_rate": r.get("win_rate"),
                    "ci": f"{_pct(r.get('ci_low'))}-{_pct(r.get('ci_high'))}",
                    "valid_actions": r.get("valid_actions"), "source": path.name,
                })
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise MetamonRLError(
                f"--eval_json {path} is not a file written by `python -m metamon.rl.evaluate --json_out`: {error!r}"
            ) from None
    return rows


def model_card(run_dir: PathLike, repo_id: str, epochs: Sequence[int], eval_json: Iterable[PathLike] = ()) -> str:
    """The README.md pushed with the run (module docstring)."""
    run_dir = Path(run_dir)
    info = RunInfo.load(run_dir)
    config = (run_dir / CONFIG_FILE).read_text(encoding="utf-8")
    name, latest = run_dir.name, max(epochs)
    inputs = [
        ("observation space", info.observation_space), ("action space", info.action_space),
        ("reward function", info.reward_function), ("tokenizer", info.tokenizer),
        ("formats", ", ".join(info.formats) or "-"), ("max_seq_len", info.max_seq_len),
        ("started from", info.init_from or "random initialisation"), ("created", info.created),
        ("AMAGO core version", info.amago_version),
    ]
    lines = [
        "---", "library_name: metamon", "tags:", "- pokemon", "- reinforcement-learning", "- metamon", "---", "",
        f"# {name}", "",
        "A Pokémon Showdown agent trained with metamon-gemma (metamon's sequence-RL agents on an AMAGO-compatible "
        "core), pushed with `python -m metamon.rl.pretrained push`.", "",
        "## Use it", "", "```bash",
        f"python -m metamon.rl.pretrained pull --repo {repo_id} --dest runs/{name}",
        f"python -m metamon.rl.evaluate --player run:runs/{name}@{latest} --formats {(info.formats or ['gen1ou'])[0]}",
        "```", "",
        f"As a player spec: `run:runs/{name}@{latest}`; in Python: "
        f"`agent, info = metamon.rl.run_dir.load_agent(\"runs/{name}\", epoch={latest})`.", "",
        f"Weights (`ckpts/policy_weights/policy_epoch_N.safetensors`) for epochs: {', '.join(map(str, epochs))}.", "",
        "## Training", "", "```bash", info.command or "# the training command was not recorded in run.json", "```", "",
        "| input | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in inputs), "",
        "## Model and training configuration (`config.gin`)", "", "```gin", config.rstrip("\n"), "```", "",
    ]
    rows = _validation_rows(run_dir) + _evaluation_rows(eval_json)
    if rows:
        lines += ["## Evaluation", "", "| epoch | format | opponent | battles | win % | 95% CI | valid % | source |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [
            f"| {r['epoch']} | {r['format']} | {r['opponent']} | {r['battles']} | {_pct(r['win_rate'])} | {r['ci']} "
            f"| {_pct(r['valid_actions'])} | {r['source']} |"
            for r in rows
        ]
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# push
# ---------------------------------------------------------------------------------------------


def _place(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (no copy of big weights), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def push_run(run_dir: PathLike, repo_id: str, *, private: bool = False, epochs: Optional[Sequence[int]] = None,
             eval_json: Iterable[PathLike] = (), commit_message: Optional[str] = None) -> str:
    """Upload the run ``run_dir`` to the Hub model repository ``repo_id`` (created when missing,
    private with ``private``): the files of the module docstring, weights of ``epochs`` (None: every
    saved epoch). Returns the repository's URL. :class:`MetamonRLError` when the run lacks
    ``run.json``, ``config.gin`` or the epochs' weights."""
    run_dir = Path(run_dir)
    info = RunInfo.load(run_dir)  # a run directory, or a clear error
    if not (run_dir / CONFIG_FILE).is_file():
        raise MetamonRLError(f"{run_dir / CONFIG_FILE} does not exist: a pushed run must describe its architecture")
    saved = available_epochs(run_dir)
    chosen = sorted(set(saved if epochs is None else epochs))
    missing = [e for e in chosen if e not in saved]
    if not chosen or missing:
        raise MetamonRLError(
            f"{run_dir} has no weights for epoch(s) {missing or 'any'}; available epochs: {saved or 'none'}"
        )
    layout = RunLayout(run_dir)
    card = model_card(run_dir, repo_id, chosen, eval_json)
    api = huggingface_hub.HfApi()
    near = run_dir.parent if os.access(run_dir.parent, os.W_OK) else None  # same disk: hard links work
    with tempfile.TemporaryDirectory(prefix=".push-", dir=near) as staging:
        staging = Path(staging)
        _place(run_dir / RUN_INFO_FILE, staging / RUN_INFO_FILE)
        _place(run_dir / CONFIG_FILE, staging / CONFIG_FILE)
        for epoch in chosen:
            weights = layout.policy_weights(epoch)
            _place(weights, staging / WEIGHTS_FOLDER / weights.name)
        atomic_write(staging / MODEL_CARD_FILE, card)
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            repo_id=repo_id, folder_path=str(staging), repo_type="model",
            commit_message=commit_message or f"{run_dir.name}: epochs {', '.join(map(str, chosen))} ({info.created})",
        )
    return str(url)


# ---------------------------------------------------------------------------------------------
# pull
# ---------------------------------------------------------------------------------------------


def _check_pulled(folder: Path, repo_id: str) -> None:
    """Refuse a download that is not a safe run directory (module docstring); converts ``.pt``
    weights to ``.safetensors``."""
    where = f"the Hub repository {repo_id!r}"
    if not (folder / RUN_INFO_FILE).is_file():
        raise MetamonRLError(
            f"{where} holds no {RUN_INFO_FILE}: it is not a pushed run (metamon's published models are "
            f"played as pretrained:NAME, see `python -m metamon.rl.pretrained list`)"
        )
    RunInfo.load(folder)
    config = folder / CONFIG_FILE
    if not config.is_file():
        raise MetamonRLError(f"{where} holds no {CONFIG_FILE}: the run's architecture is unknown")
    check_gin(config.read_text(encoding="utf-8"), f"{CONFIG_FILE} of {repo_id}")
    weights_dir = folder / WEIGHTS_FOLDER
    for pt in sorted(weights_dir.glob("policy_epoch_*.pt")) if weights_dir.is_dir() else []:
        target = pt.with_suffix(".safetensors")
        try:
            state = read_weights(pt)  # torch.load(weights_only=True): no code runs
        except AmagoError as error:
            raise MetamonRLError(f"{where}: {error}") from None
        if not target.exists():
            save_weights(state, target)
        pt.unlink()
    if not available_epochs(folder):
        raise MetamonRLError(f"{where} holds no policy weights ({WEIGHTS_FOLDER}/policy_epoch_N.safetensors)")


def pull_run(repo_id: str, dest: PathLike, *, revision: Optional[str] = None) -> Path:
    """Download the run pushed to ``repo_id`` (at ``revision``; None: main) into the new run
    directory ``dest`` (must not exist, or be empty), checked as the module docstring says.
    Returns ``dest``."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise MetamonRLError(f"--dest {dest} already exists and is not an empty folder: pull into a new run directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.pull-", dir=dest.parent))
    try:
        hub_snapshot(repo_id, local_dir=staging, allow_patterns=PULLED_PATTERNS, revision=revision)
        shutil.rmtree(staging / ".cache", ignore_errors=True)  # huggingface_hub's download metadata
        _check_pulled(staging, repo_id)
        if dest.exists():
            dest.rmdir()
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
