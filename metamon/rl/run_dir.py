"""A run directory describes itself: rebuild a trained agent from ``{save_dir}/{run_name}`` + epoch.

Layout (the ``ckpts/`` part is written by :class:`metamon.amago.experiment.Experiment`)::

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
run's configuration bound afterwards.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import tempfile
import warnings
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from metamon.rl import MetamonRLError

__all__ = [
    "RUN_INFO_FILE",
    "CONFIG_FILE",
    "RunInfo",
    "run_path",
    "write_run_files",
    "available_epochs",
    "policy_weights_path",
    "build_spaces",
    "build_agent",
    "load_agent",
]

RUN_INFO_FILE = "run.json"
CONFIG_FILE = "config.gin"
_WEIGHTS_DIR = Path("ckpts") / "policy_weights"
_WEIGHTS_NAME = re.compile(r"^policy_epoch_(\d+)\.safetensors$")
# Gin bindings that receive the run's tokenizer name (the encoders that tokenize text).
# Timestep encoders that take the metamon tokenizer as the gin parameter ``tokenizer``, and the
# modules that register them (imported only when a configuration uses them: peft is slow to import).
TOKENIZER_ENCODERS = {
    "MetamonTstepEncoder": "metamon.rl.tstep_encoders",
    "GemmaTstepEncoder": "metamon.rl.gemma_encoder",
}


def tokenizer_bindings(tokenizer: Optional[str], gin_text: str) -> dict:
    """``{"<Encoder>.tokenizer": tokenizer}`` for every encoder of :data:`TOKENIZER_ENCODERS`
    that ``gin_text`` mentions (MetamonTstepEncoder always), importing its module so that gin
    knows the configurable before the binding is applied."""
    if tokenizer is None:
        return {}
    bindings = {}
    for name, module in TOKENIZER_ENCODERS.items():
        if name == "MetamonTstepEncoder" or name in gin_text:
            importlib.import_module(module)
            bindings[f"{name}.tokenizer"] = tokenizer
    return bindings

PathLike = Union[str, os.PathLike]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _amago_version() -> str:
    from metamon.amago import __version__

    return __version__


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, then rename it over ``path``: a
    reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_path(save_dir: PathLike, run_name: str) -> Path:
    """``{save_dir}/{run_name}``."""
    return Path(save_dir) / run_name


@dataclass
class RunInfo:
    """What a run directory needs to rebuild its agent's inputs and outputs.

    ``observation_space`` / ``action_space`` / ``reward_function`` are registry names of
    :mod:`metamon.interface`; ``tokenizer`` a :func:`metamon.tokenizer.get_tokenizer` name (or
    ``None`` for an untokenized observation space); ``formats`` the battle formats trained on;
    ``max_seq_len`` the agent's context length (may be filled in after construction, before
    :meth:`save`); ``amago_version`` the version of
    :mod:`metamon.amago` that trained it; ``created`` an ISO-8601 UTC timestamp.
    """

    observation_space: str
    action_space: str
    reward_function: str
    tokenizer: Optional[str]
    formats: List[str]
    max_seq_len: Optional[int] = None
    amago_version: str = field(default_factory=_amago_version)
    created: str = field(default_factory=_now)

    def save(self, run_dir: PathLike) -> Path:
        """Atomically write ``{run_dir}/run.json`` (``run_dir`` = ``{save_dir}/{run_name}``);
        return its path. ``max_seq_len`` must be set by then."""
        if not isinstance(self.max_seq_len, int) or self.max_seq_len < 1:
            raise MetamonRLError(f"RunInfo.max_seq_len must be a positive int before saving, got {self.max_seq_len!r}")
        path = Path(run_dir) / RUN_INFO_FILE
        _atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")
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
        required = {f.name for f in fields(cls) if f.name not in ("amago_version", "created")}
        missing = sorted(required - set(data))
        if missing:
            raise MetamonRLError(f"{path} lacks the key(s) {missing}")
        unknown = sorted(set(data) - names)
        if unknown:
            warnings.warn(f"{path}: ignoring unknown key(s) {unknown}", stacklevel=2)
        return cls(**{k: v for k, v in data.items() if k in names})


def write_run_files(run_dir: PathLike, info: RunInfo, config_text: str) -> None:
    """Atomically write ``{run_dir}/run.json`` (``info``) and ``{run_dir}/config.gin``
    (``config_text``: the model gin text, the training gin text, then the ``--gin_bindings``
    lines, so that parsing it reproduces the run's configuration)."""
    info.save(run_dir)
    _atomic_write_text(Path(run_dir) / CONFIG_FILE, config_text)


def policy_weights_path(run_dir: PathLike, epoch: int) -> Path:
    return Path(run_dir) / _WEIGHTS_DIR / f"policy_epoch_{epoch}.safetensors"


def available_epochs(run_dir: PathLike) -> List[int]:
    """Epochs N with ``ckpts/policy_weights/policy_epoch_{N}.safetensors``, sorted."""
    folder = Path(run_dir) / _WEIGHTS_DIR
    if not folder.is_dir():
        return []
    found = (_WEIGHTS_NAME.match(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def build_spaces(info: RunInfo):
    """``(observation_space, action_space, reward_function)`` instances named by ``info``.

    The observation space is wrapped in a ``TokenizedObservationSpace`` when ``info.tokenizer``
    is set. Unknown names raise :class:`~metamon.errors.UnknownNameError`.
    """
    from metamon.interface import (
        TokenizedObservationSpace,
        get_action_space,
        get_observation_space,
        get_reward_function,
    )

    obs_space = get_observation_space(info.observation_space)
    if info.tokenizer is not None:
        from metamon.tokenizer import get_tokenizer

        obs_space = TokenizedObservationSpace(obs_space, get_tokenizer(info.tokenizer))
    return obs_space, get_action_space(info.action_space), get_reward_function(info.reward_function)


def build_agent(
    info: RunInfo,
    gin_files: Sequence[PathLike],
    gin_bindings: Optional[dict] = None,
    run_name: str = "inference",
    ckpt_base_dir: Optional[PathLike] = None,
):
    """A freshly initialised (random) agent for ``info``'s spaces, configured by ``gin_files``.

    Clears gin's configuration, binds the tokenizer (:func:`tokenizer_bindings`) and
    ``gin_bindings``, parses ``gin_files`` in order, then builds the agent exactly as training
    does: ``MetamonAMAGOExperiment(run_name, ckpt_base_dir, dataset=None, obs_space,
    action_space).build_agent()``. Returns the agent in train mode on the CPU.
    """
    import gin

    from metamon.amago.cli_utils import use_config
    from metamon.rl.dataset import obs_gym_space
    from metamon.rl.experiment import MetamonAMAGOExperiment

    obs_space, action_space, _ = build_spaces(info)
    gin_text = "\n".join(Path(f).read_text() for f in gin_files) + "\n".join(gin_bindings or {})
    bindings = tokenizer_bindings(info.tokenizer, gin_text)
    bindings.update(gin_bindings or {})
    gin.clear_config()
    use_config(bindings, [str(f) for f in gin_files], finalize=False)
    experiment = MetamonAMAGOExperiment(
        run_name=run_name,
        ckpt_base_dir=str(ckpt_base_dir if ckpt_base_dir is not None else tempfile.gettempdir()),
        dataset=None,
        obs_space=obs_gym_space(obs_space, action_space),
        action_space=action_space.gym_space,
    )
    if experiment.max_seq_len != info.max_seq_len:
        raise MetamonRLError(
            f"The gin configuration sets max_seq_len={experiment.max_seq_len} but the run info says "
            f"{info.max_seq_len}; they must agree (files: {[str(f) for f in gin_files]})"
        )
    return experiment.build_agent()


def load_agent(run_dir: PathLike, epoch: Optional[int] = None, device="cpu") -> Tuple[object, RunInfo]:
    """Rebuild the agent of ``run_dir`` with the weights of ``epoch`` (default: the latest).

    Returns ``(agent, run_info)`` with the agent on ``device`` in eval mode. Raises
    :class:`MetamonRLError` when the directory, ``run.json``, ``config.gin`` or the epoch's
    weights are missing (listing the available epochs), and when the weights do not fit the
    architecture that ``config.gin`` describes.
    """
    from metamon.amago.checkpoints import load_weights
    from metamon.amago.utils import AmagoError

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MetamonRLError(f"Run directory {run_dir} does not exist (expected {{save_dir}}/{{run_name}})")
    info = RunInfo.load(run_dir)
    config = run_dir / CONFIG_FILE
    if not config.is_file():
        raise MetamonRLError(
            f"{config} does not exist: the run's gin configuration is needed to rebuild its agent"
        )
    epochs = available_epochs(run_dir)
    if not epochs:
        raise MetamonRLError(
            f"{run_dir} has no policy weights yet (no {_WEIGHTS_DIR}/policy_epoch_N.safetensors)"
        )
    if epoch is None:
        epoch = epochs[-1]
    elif epoch not in epochs:
        raise MetamonRLError(
            f"{run_dir} has no weights for epoch {epoch}; available epochs: {epochs}"
        )
    agent = build_agent(info, [config], run_name=run_dir.name, ckpt_base_dir=run_dir.parent)
    weights = policy_weights_path(run_dir, epoch)
    try:
        load_weights(agent, weights)
    except AmagoError as error:
        raise MetamonRLError(
            f"The weights {weights} do not fit the agent described by {config}: {error}"
        ) from error
    agent.to(device)
    agent.eval()
    return agent, info
