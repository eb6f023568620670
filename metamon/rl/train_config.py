"""``TrainConfig``: everything one training run needs, as Python values.

``python -m metamon.rl.train`` parses its flags into a ``TrainConfig`` (one flag per field, same
name, same default); scripts, benchmarks and higher layers build one directly::

    from metamon.rl.train import TrainConfig, build_experiment
    config = TrainConfig(run_name="il", save_dir="runs", model_gin_config="tiny_agent.gin",
                         train_gin_config="il.gin", parsed_replay_dir="data", formats=["gen1ou"],
                         epochs=2, steps_per_epoch=200, eval_gens=())
    experiment = build_experiment(config)

Values are checked when the config is made (:class:`~metamon.errors.MetamonError` naming the
field and its flag); names (formats, spaces, tokenizer, gin files) are checked where they are
resolved, by :func:`metamon.rl.train.build_experiment`, before training starts.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Optional

from metamon.amago.run_layout import run_name_problem
from metamon.errors import MetamonError
from metamon.interface import DefaultActionSpace, DefaultShapedReward, TeamPreviewObservationSpace
from metamon.tokenizer import DEFAULT_TOKENIZER

__all__ = ["TrainConfig", "DEFAULT_EVAL_GENS", "WINS_LOSSES_BOTH"]

DEFAULT_EVAL_GENS = (1, 2, 3, 4, 9)
WINS_LOSSES_BOTH = ("wins", "losses", "both")


@dataclass
class TrainConfig:
    """One training run (each field is the ``train`` CLI flag of the same name).

    Run: ``run_name`` (one folder name: no path separator, not ``.`` or ``..``), ``save_dir``
    (the run goes to ``save_dir/run_name/``), ``ckpt`` (resume
    that run at checkpoint epoch N; None starts a new run), ``init_from_checkpoint`` (a new run
    starts from the weights of another run, named as a player spec ``run:DIR@N`` — ``run:DIR``
    for its latest epoch; the architecture must match). Model: ``model_gin_config``,
    ``train_gin_config`` (bare names in the package configs or paths), ``gin_bindings``
    (``"X.y = z"`` strings applied after the files). Schedule: ``epochs``, ``steps_per_epoch``
    (optimizer updates), ``batch_size_per_gpu``, ``grad_accum``, ``dloader_workers``,
    ``ckpt_interval`` (epochs; the last epoch always saves), ``log_interval`` (micro-batches),
    ``seed``, ``log`` (wandb). Data: ``formats`` (None: all supported), ``parsed_replay_dir``
    (None: the cache), ``custom_replay_dir`` mixed in with weight
    ``custom_replay_sample_weight``, ``wins_losses_both``, ``featurized_cache`` (a folder that
    keeps each file's featurization for later epochs, :mod:`metamon.data.featurized_cache`;
    None: featurize on every read). Spaces: ``obs_space``,
    ``action_space``, ``reward_function`` (registry names), ``tokenizer``. Validation battles:
    ``eval_gens`` (gen{g}ou after each epoch; empty: none), ``eval_opponents`` (None: the
    heuristic composite set), ``eval_battles`` per (format, opponent), ``eval_server_url``
    (None: start a local server).
    """

    run_name: str
    save_dir: str
    model_gin_config: str
    train_gin_config: str
    gin_bindings: Sequence[str] = ()
    ckpt: Optional[int] = None
    init_from_checkpoint: Optional[str] = None
    epochs: int = 100
    steps_per_epoch: int = 25_000
    batch_size_per_gpu: int = 12
    grad_accum: int = 1
    formats: Optional[Sequence[str]] = None
    parsed_replay_dir: Optional[str] = None
    custom_replay_dir: Optional[str] = None
    custom_replay_sample_weight: float = 0.25
    wins_losses_both: str = "both"
    featurized_cache: Optional[str] = None
    obs_space: str = TeamPreviewObservationSpace.__name__
    action_space: str = DefaultActionSpace.__name__
    reward_function: str = DefaultShapedReward.__name__
    tokenizer: str = DEFAULT_TOKENIZER
    dloader_workers: int = 10
    ckpt_interval: int = 2
    log_interval: int = 300
    eval_gens: Sequence[int] = DEFAULT_EVAL_GENS
    eval_opponents: Optional[Sequence[str]] = None
    eval_battles: int = 10
    eval_server_url: Optional[str] = None
    log: bool = False
    seed: Optional[int] = None

    def __post_init__(self):
        check = self._require
        for name in ("run_name", "save_dir", "model_gin_config", "train_gin_config", "obs_space",
                     "action_space", "reward_function", "tokenizer"):
            check(isinstance(getattr(self, name), str) and getattr(self, name) != "", name, "a non-empty string")
        problem = run_name_problem(self.run_name)
        check(problem is None, "run_name", f"one folder name inside --save_dir ({problem})")
        for name in ("parsed_replay_dir", "custom_replay_dir", "featurized_cache", "eval_server_url",
                     "init_from_checkpoint"):
            check(getattr(self, name) is None or isinstance(getattr(self, name), str), name, "a string or None")
        for name in ("epochs", "steps_per_epoch", "batch_size_per_gpu", "grad_accum", "ckpt_interval", "log_interval"):
            check(_is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "an int >= 1")
        for name in ("dloader_workers", "eval_battles"):
            check(_is_int(getattr(self, name)) and getattr(self, name) >= 0, name, "an int >= 0")
        check(self.ckpt is None or (_is_int(self.ckpt) and self.ckpt >= 0), "ckpt", "None or an int >= 0")
        check(self.init_from_checkpoint is None or self.ckpt is None, "init_from_checkpoint",
              "None when --ckpt resumes a run (a resume continues its own weights)")
        check(self.seed is None or _is_int(self.seed), "seed", "None or an int")
        weight = self.custom_replay_sample_weight
        check(isinstance(weight, (int, float)) and not isinstance(weight, bool) and 0.0 <= weight <= 1.0,
              "custom_replay_sample_weight", "a number in [0, 1]")
        check(self.wins_losses_both in WINS_LOSSES_BOTH, "wins_losses_both", f"one of {WINS_LOSSES_BOTH}")
        check(isinstance(self.log, bool), "log", "a bool")
        for name in ("gin_bindings", "formats", "eval_opponents"):
            values = getattr(self, name)
            if values is None and name != "gin_bindings":
                continue
            check(_is_sequence(values) and all(isinstance(v, str) for v in values), name, "a sequence of strings")
            setattr(self, name, tuple(values))
        check(_is_sequence(self.eval_gens) and all(_is_int(g) for g in self.eval_gens),
              "eval_gens", "a sequence of ints (generation numbers)")
        self.eval_gens = tuple(self.eval_gens)

    def command_line(self) -> str:
        """The ``python -m metamon.rl.train`` command that gives this config: the required flags,
        then every field whose value differs from its default (``--gin_bindings`` repeated, one
        per binding; a true bool as a bare flag; a sequence as its values, an empty one as the bare
        flag), shell-quoted. ``run.json`` records it (``RunInfo.command``)."""
        words = ["python", "-m", "metamon.rl.train"]
        for spec in fields(self):
            value = getattr(self, spec.name)
            default = spec.default if spec.default is not MISSING else MISSING
            if value is None or (default is not MISSING and value == default):
                continue
            flag = f"--{spec.name}"
            if isinstance(value, bool):
                words += [flag] if value else []
            elif spec.name == "gin_bindings":
                for binding in value:
                    words += [flag, binding]
            elif _is_sequence(value):
                words += [flag, *(str(v) for v in value)]
            else:
                words += [flag, str(value)]
        return shlex.join(words)

    def _require(self, ok: bool, name: str, expected: str) -> None:
        if not ok:
            raise MetamonError(f"TrainConfig.{name} (--{name}) must be {expected}, got {getattr(self, name)!r}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_sequence(values) -> bool:
    """A list/tuple-like of items; a bare string is refused (it would read as characters)."""
    return isinstance(values, Sequence) and not isinstance(values, (str, bytes))
