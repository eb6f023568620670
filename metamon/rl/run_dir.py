"""A run directory describes itself: rebuild a trained agent from ``{save_dir}/{run_name}`` + epoch.

Layout (the ``ckpts/`` part is :class:`metamon.amago.run_layout.RunLayout`, written by
:class:`metamon.amago.experiment.Experiment`)::

    {save_dir}/{run_name}/
        run.json                 RunInfo: observation space, action space, reward function,
                                 tokenizer and format names, max_seq_len, AMAGO version, date
        config.gin               the gin inputs the run was trained with (model gin text, then
                                 training gin text, then the --gin_bindings lines); train.py
                                 writes it and run.json with :func:`write_run_files`
        ckpts/config.txt         gin's operative config (what was actually used; informative)
        ckpts/policy_weights/policy_epoch_{N}.safetensors
        ckpts/training_states/{run_name}_epoch_{N}/   (exact resume; not needed here)

Usage::

    from metamon.rl.run_dir import load_agent
    agent, info = load_agent("runs/my_run")            # latest epoch, CPU, eval mode
    agent, info = load_agent("runs/my_run", epoch=4, device="cuda")
    obs_space, action_space, reward = build_spaces(info)

:func:`load_agent` clears gin's global configuration (``gin.clear_config()``) and leaves the
run's configuration bound afterwards. It builds the agent with
:func:`metamon.amago.build.build_agent` (no trainer, no accelerator): the structure comes from
the run's ``config.gin`` (:func:`metamon.rl.agent_config.configure_agent`), parsed as untrusted
data (:mod:`metamon.rl.safe_gin`): a ``config.gin`` that imports a module outside metamon, turns on
gin's dynamic registration, includes a file or references a configurable that is not metamon's
is refused with its file and line, before anything of it runs.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import gin
import gin.config

from metamon.amago import __version__ as AMAGO_VERSION
from metamon.amago.build import build_agent as build_amago_agent
from metamon.amago.checkpoints import load_weights, tensor_shapes
from metamon.amago.run_layout import RunLayout, run_name_problem
from metamon.amago.utils import AmagoError
from metamon.files import atomic_write
from metamon.interface import TokenizedObservationSpace, get_action_space, get_observation_space, get_reward_function
from metamon.rl import MetamonRLError
from metamon.rl.agent_config import configure_agent
from metamon.rl.dataset import obs_gym_space
from metamon.rl.legacy_encoder import adopt_legacy_encoder
from metamon.tokenizer import get_tokenizer

__all__ = [
    "RUN_INFO_FILE",
    "CONFIG_FILE",
    "RunInfo",
    "run_path",
    "check_output_dir",
    "write_run_files",
    "gin_binding_lines",
    "available_epochs",
    "policy_weights_path",
    "build_spaces",
    "build_agent",
    "load_agent",
]

RUN_INFO_FILE = "run.json"
CONFIG_FILE = "config.gin"

PathLike = Union[str, os.PathLike]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_path(save_dir: PathLike, run_name: str) -> Path:
    """``{save_dir}/{run_name}``; :class:`MetamonRLError` naming ``--run_name`` when ``run_name``
    is not one folder name inside ``save_dir`` (empty, ``.``/``..``, a path separator, an
    absolute path: :func:`metamon.amago.run_layout.run_name_problem`)."""
    problem = run_name_problem(run_name)
    if problem is not None:
        raise MetamonRLError(f"--run_name {run_name!r} must be one folder name inside {save_dir}: {problem}")
    return Path(save_dir) / run_name


def check_output_dir(path: PathLike, flag: str) -> Path:
    """Check, without creating anything, that ``path`` is a folder this process can write in, or
    can be created: its nearest existing ancestor must be a folder with write permission.
    Raises :class:`MetamonRLError` naming ``flag`` (e.g. ``"--save_dir"``) and what is wrong
    (a file where a folder is needed, no write permission). Returns ``path``."""
    path = Path(path)
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    where = f"{flag} {path}" if existing == path else f"{flag} {path} cannot be created: {existing}"
    if not existing.is_dir():
        raise MetamonRLError(f"{where} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise MetamonRLError(f"{where} is not writable (permission denied)")
    return path


# run.json keys older runs may lack
_OPTIONAL_KEYS = ("amago_version", "created", "init_from", "finetuned_from", "command")


@dataclass
class RunInfo:
    """What a run directory needs to rebuild its agent's inputs and outputs.

    ``observation_space`` / ``action_space`` / ``reward_function`` are registry names of
    :mod:`metamon.interface`; ``tokenizer`` a :func:`metamon.tokenizer.get_tokenizer` name (or
    ``None`` for an untokenized observation space); ``formats`` the battle formats trained on;
    ``max_seq_len`` the agent's context length (may be filled in after construction, before
    :meth:`save`); ``init_from`` the weights file a finetuned run started from (None: scratch)
    and ``finetuned_from`` that source as a player spec with its epoch (``pretrained:NAME@N`` or
    ``run:/abs/DIR@N``); ``command`` the command line that created the run, when a CLI recorded
    it (``finetune_from_hf`` does); ``amago_version`` the version of
    :mod:`metamon.amago` that trained it; ``created`` an ISO-8601 UTC timestamp.
    """

    observation_space: str
    action_space: str
    reward_function: str
    tokenizer: Optional[str]
    formats: List[str]
    max_seq_len: Optional[int] = None
    init_from: Optional[str] = None
    finetuned_from: Optional[str] = None
    command: Optional[str] = None
    amago_version: str = AMAGO_VERSION
    created: str = field(default_factory=_now)

    def save(self, run_dir: PathLike) -> Path:
        """Atomically write ``{run_dir}/run.json`` (``run_dir`` = ``{save_dir}/{run_name}``);
        return its path. ``max_seq_len`` must be set by then."""
        if not isinstance(self.max_seq_len, int) or self.max_seq_len < 1:
            raise MetamonRLError(f"RunInfo.max_seq_len must be a positive int before saving, got {self.max_seq_len!r}")
        path = Path(run_dir) / RUN_INFO_FILE
        atomic_write(path, json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, run_dir: PathLike) -> "RunInfo":
        """Read ``{run_dir}/run.json``; missing file or keys raise :class:`MetamonRLError`."""
        path = Path(run_dir) / RUN_INFO_FILE
        if not path.is_file():
            raise MetamonRLError(
                f"{path} does not exist: {run_dir} is not a metamon run directory (train.py writes "
                f"{RUN_INFO_FILE} when a run starts)"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise MetamonRLError(f"{path} is not valid JSON: {error}") from error
        if not isinstance(data, dict):
            raise MetamonRLError(f"{path} must hold a JSON object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.name not in _OPTIONAL_KEYS}
        missing = sorted(required - set(data))
        if missing:
            raise MetamonRLError(f"{path} lacks the key(s) {missing}")
        unknown = sorted(set(data) - names)
        if unknown:
            warnings.warn(f"{path}: ignoring unknown key(s) {unknown}", stacklevel=2)
        return cls(**{k: v for k, v in data.items() if k in names})


def gin_binding_lines(params: dict) -> List[str]:
    """``{"X.y": value}`` as gin binding lines ``X.y = <value>`` that parse back to the same
    values: literals (str, int, float, bool, None, and tuples / lists / dicts of them) as Python
    literals, a gin-registered class or function as a reference ``@module.Name``.
    :class:`MetamonRLError` naming the binding for any other value."""
    return [f"{key} = {_gin_value(value, key)}" for key, value in params.items()]


def _gin_value(value, key: str) -> str:
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        items = [_gin_value(v, key) for v in value]
        if isinstance(value, list):
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_gin_value(k, key)}: {_gin_value(v, key)}" for k, v in value.items()) + "}"
    if isinstance(value, gin.config.ConfigurableReference):
        return repr(value)
    configurable = gin.config._inverse_lookup(value) if callable(value) else None  # gin has no public lookup
    if configurable is None:
        raise MetamonRLError(
            f"cannot write the gin binding {key} = {value!r}: only literals and gin-registered classes or "
            "functions can be written to config.gin"
        )
    return f"@{configurable.selector}"


def write_run_files(run_dir: PathLike, info: RunInfo, config_text: str) -> None:
    """Atomically write ``{run_dir}/run.json`` (``info``) and ``{run_dir}/config.gin``
    (``config_text``: the model gin text, the training gin text, then the ``--gin_bindings``
    lines, so that parsing it reproduces the run's configuration)."""
    info.save(run_dir)
    atomic_write(Path(run_dir) / CONFIG_FILE, config_text)


def policy_weights_path(run_dir: PathLike, epoch: int) -> Path:
    """``{run_dir}/ckpts/policy_weights/policy_epoch_{epoch}.safetensors`` (``RunLayout``)."""
    return RunLayout(run_dir).policy_weights(epoch)


def available_epochs(run_dir: PathLike) -> List[int]:
    """Epochs N with ``ckpts/policy_weights/policy_epoch_{N}.safetensors``, sorted."""
    return RunLayout(run_dir).weight_epochs()


def build_spaces(info: RunInfo):
    """``(observation_space, action_space, reward_function)`` instances named by ``info``.

    The observation space is wrapped in a ``TokenizedObservationSpace`` when ``info.tokenizer``
    is set. Unknown names raise :class:`~metamon.errors.UnknownNameError`.
    """
    obs_space = get_observation_space(info.observation_space)
    if info.tokenizer is not None:
        obs_space = TokenizedObservationSpace(obs_space, get_tokenizer(info.tokenizer))
    return obs_space, get_action_space(info.action_space), get_reward_function(info.reward_function)


def build_agent(info: RunInfo, gin_files: Sequence[PathLike], gin_bindings: Optional[dict] = None, *,
                untrusted: bool = False, weights: Optional[PathLike] = None):
    """A freshly initialised (random) agent for ``info``'s spaces, configured by ``gin_files``.

    Configures gin with :func:`~metamon.rl.agent_config.configure_agent` (``gin_bindings`` bound
    first, then ``gin_files`` in order; the encoder gets ``info.tokenizer`` unless the files bind
    one), checks that the configured ``max_seq_len`` equals ``info.max_seq_len``, then builds the
    agent as training does, with :func:`metamon.amago.build.build_agent`. Returns the agent in
    train mode on the CPU. ``untrusted=True`` parses the files with :mod:`metamon.rl.safe_gin`
    (metamon's own configurables only; :func:`load_agent` always does). ``weights``: the
    ``.safetensors`` file the agent will load; when it was saved with this project's own encoder
    under its old name, the agent gets ``ScratchTstepEncoder`` (:mod:`metamon.rl.legacy_encoder`).
    """
    structure = configure_agent(gin_files, params=gin_bindings, tokenizer=info.tokenizer, untrusted=untrusted)
    if weights is not None:
        structure["tstep_encoder_type"] = adopt_legacy_encoder(
            structure["tstep_encoder_type"], tensor_shapes(weights), str(weights)
        )
    if structure["max_seq_len"] != info.max_seq_len:
        raise MetamonRLError(
            f"The gin configuration sets max_seq_len={structure['max_seq_len']} but the run info says "
            f"{info.max_seq_len}; they must agree (files: {[str(f) for f in gin_files]})"
        )
    obs_space, action_space, _ = build_spaces(info)
    return build_amago_agent(obs_gym_space(obs_space, action_space), action_space.gym_space, **structure)


def load_agent(run_dir: PathLike, epoch: Optional[int] = None, device="cpu") -> Tuple[object, RunInfo]:
    """Rebuild the agent of ``run_dir`` with the weights of ``epoch`` (default: the latest).

    Returns ``(agent, run_info)`` with the agent on ``device`` in eval mode. Raises
    :class:`MetamonRLError` when the directory, ``run.json``, ``config.gin`` or the epoch's
    weights are missing (listing the available epochs), and when the weights do not fit the
    architecture that ``config.gin`` describes.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MetamonRLError(f"Run directory {run_dir} does not exist (expected {{save_dir}}/{{run_name}})")
    info = RunInfo.load(run_dir)
    config = run_dir / CONFIG_FILE
    if not config.is_file():
        raise MetamonRLError(
            f"{config} does not exist: the run's gin configuration is needed to rebuild its agent"
        )
    layout = RunLayout(run_dir)
    epochs = layout.weight_epochs()
    if not epochs:
        raise MetamonRLError(
            f"{run_dir} has no policy weights yet (no "
            f"{layout.policy_weights_dir.relative_to(run_dir)}/policy_epoch_N.safetensors)"
        )
    if epoch is None:
        epoch = epochs[-1]
    elif epoch not in epochs:
        raise MetamonRLError(
            f"{run_dir} has no weights for epoch {epoch}; available epochs: {epochs}"
        )
    weights = layout.policy_weights(epoch)
    try:  # a run folder is data: no code from its gin
        agent = build_agent(info, [config], untrusted=True, weights=weights)
    except AmagoError as error:  # a gin error in the run's config.gin (unknown name, bad value type)
        raise MetamonRLError(f"cannot rebuild the agent of {run_dir}: {error}") from error
    try:
        load_weights(agent, weights)
    except AmagoError as error:
        raise MetamonRLError(
            f"The weights {weights} do not fit the agent described by {config}: {error}"
        ) from error
    agent.to(device)
    agent.eval()
    return agent, info
