"""metamon's pretrained-model registry: every published checkpoint by name, plus the user's own runs.

Usage, as in metamon::

    from metamon.rl.pretrained import get_pretrained_model, get_pretrained_model_names
    model = get_pretrained_model("SyntheticRLV2")
    agent = model.initialize_agent()                 # the entry's default epoch; eval mode, CPU
    agent = model.initialize_agent(checkpoint=20)    # another epoch
    agent = model.initialize_agent(checkpoint=0)     # 0: keep the random initialisation
    obs_space, action_space, reward = build_spaces(model.run_info())   # metamon.rl.run_dir

    LocalPretrainedModel("ckpts", "small_agent", "exp_rl", "my_run", default_checkpoint=10)
    LocalFinetunedModel(SmallRL, "ckpts", "my_finetune", 2)           # architecture of SmallRL

A player spec ``pretrained:NAME[@EPOCH]`` plays any registered model (registered here with
:func:`metamon.battles.register_player_kind`; it plays like a ``run:`` player). Command line::

    python -m metamon.rl.pretrained list [--markdown]
    python -m metamon.rl.pretrained push --run runs/my_run --repo me/my_run [--private] [--epochs 4 8]
    python -m metamon.rl.pretrained pull --repo me/my_run --dest runs/my_run [--revision R]

(push and pull: :mod:`metamon.rl.run_sharing`.)

**How an entry builds its agent** (metamon's order): :meth:`PretrainedModel.gin_bindings` is bound
first: ``MetamonTstepEncoder.tokenizer`` = the entry's tokenizer, ``SigmaReparam.fast_init = True``,
``TformerTrajEncoder.attention_type`` = ``FlashAttention`` when the ``flash_attn`` package imports
and CUDA is available, else ``VanillaAttention`` (with a warning), then the entry's
``gin_overrides`` (e.g. ``FlashAttention.window_size = (32, 0)``, the Perceiver encoder's
tokenizer); then the model gin file, then the training gin file are parsed, so what they bind
wins over the dict. The agent is built like a run's (:func:`metamon.amago.build.build_agent`, the
entry's observation space wrapped in a ``TokenizedObservationSpace``, action space), the weights
are fetched and loaded strictly (every key, every shape), and the agent is put in eval mode.

Our ``FlashAttention`` is torch's ``scaled_dot_product_attention`` and honours its window on any
device, so a windowed entry computes metamon's function on the CPU too. ``VanillaAttention`` has
no window (as in AMAGO): it equals ``FlashAttention`` for the unwindowed paper models only.

**Where the weights come from** (``{hf_repo_id}`` / ``{model_name}`` as in metamon)::

    {model_name}/ckpts/policy_weights/policy_epoch_{N}.pt

* ``hf_repo_id`` a Hub model repository (default ``jakegrigsby/metamon``): the file is downloaded
  with ``huggingface_hub`` (:func:`metamon.hub.hub_download`) into ``hf_cache_dir`` (default
  ``$METAMON_CACHE_DIR/pretrained_models``) under the same relative path; a file already there, or
  already in a Hugging Face cache in ``hf_cache_dir`` (where metamon's own download leaves it), is
  used without the network. Offline, a :class:`~metamon.errors.MetamonError` names the repository
  and file and says where to put it.
* ``hf_repo_id`` an existing local folder with that layout (a mirror, a test, a metamon
  ``--save_dir``): read in place; ``policy_epoch_{N}.safetensors`` (our runs) is preferred over
  ``.pt``.

``.pt`` files are read with ``torch.load(weights_only=True)`` only
(:func:`metamon.amago.checkpoints.read_weights`); nothing in a checkpoint runs. The registry's
gin files are the package's own (trusted); a :class:`LocalPretrainedModel` uses the gin files its
user names, as training does. Weights that do not fit the architecture raise
:class:`MetamonRLError` naming the differing keys and shapes and the registry entries whose
architecture the checkpoint does match (:func:`matching_pretrained_models`, built on the ``meta``
device: no memory, no weights).

Building an agent configures gin's global state (``gin.clear_config()`` first), as
:func:`metamon.rl.run_dir.load_agent` does.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import re
import sys
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import huggingface_hub
import torch
from accelerate import init_empty_weights
from poke_env.player import Player

from metamon.amago.build import build_agent as build_amago_agent
from metamon.amago.checkpoints import load_weights, tensor_shapes
from metamon.amago.nets.transformer import FlashAttention, VanillaAttention
from metamon.amago.run_layout import run_name_problem
from metamon.amago.utils import AmagoError
from metamon.battles.spec import PlayerFactory, PlayerSpec, register_player_kind
from metamon.errors import MetamonError, UnknownNameError
from metamon.hub import cache_dir, hub_download
from metamon.rl import MODEL_CONFIG_DIR, TRAINING_CONFIG_DIR, MetamonRLError
from metamon.rl.agent_config import configure_agent
from metamon.rl.dataset import obs_gym_space
from metamon.rl.player import InferenceBatcher
from metamon.rl.run_dir import RunInfo, build_spaces
from metamon.rl.run_sharing import pull_run, push_run
from metamon.rl.spec_players import policy_player

__all__ = [
    "METAMON_HF_REPO",
    "PRETRAINED_MODELS",
    "CheckpointNotFoundError",
    "LocalFinetunedModel",
    "LocalPretrainedModel",
    "PretrainedModel",
    "default_attention_type",
    "get_pretrained_model",
    "get_pretrained_model_names",
    "matching_pretrained_models",
    "register_pretrained_model",
    "registry_table",
]

logger = logging.getLogger(__name__)

METAMON_HF_REPO = "jakegrigsby/metamon"
PRETRAINED_CACHE_FOLDER = "pretrained_models"  # under $METAMON_CACHE_DIR
BATTLE_BACKENDS = ("poke-env", "metamon", "pokeagent")  # metamon's names; we always play through poke-env
WEIGHT_SUFFIXES = (".safetensors", ".pt")  # in order of preference for one epoch
_WEIGHTS_NAME = re.compile(r"policy_epoch_(\d+)\.(safetensors|pt)")
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")

# gin keys of the bindings every entry gets (metamon's initialize_agent)
TOKENIZER_BINDING = "MetamonTstepEncoder.tokenizer"
PERCEIVER_TOKENIZER_BINDING = "MetamonPerceiverTstepEncoder.tokenizer"
FAST_INIT_BINDING = "SigmaReparam.fast_init"
ATTENTION_BINDING = "TformerTrajEncoder.attention_type"
WINDOW_BINDING = "FlashAttention.window_size"
TEMPERATURE_BINDING = "MetamonDiscrete.temperature"

PRETRAINED_MODELS: Dict[str, Callable[[], "PretrainedModel"]] = {}
"""Registry name -> class (or factory) of a :class:`PretrainedModel`; fill it with
:func:`register_pretrained_model`."""


class CheckpointNotFoundError(MetamonRLError, FileNotFoundError):
    """A local checkpoint folder or weights file does not exist (metamon raises FileNotFoundError)."""


# ---------------------------------------------------------------------------------------------
# one model
# ---------------------------------------------------------------------------------------------


def default_attention_type() -> type:
    """metamon's choice of the trajectory encoder's attention before the gin files are parsed:
    ``FlashAttention`` when ``flash_attn`` imports and CUDA is available, else ``VanillaAttention``
    with a warning."""
    if importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available():
        return FlashAttention
    warnings.warn(
        "flash_attn or CUDA is not available: the pretrained model's trajectory encoder uses "
        "VanillaAttention unless its gin files or gin_overrides choose an attention (metamon's "
        "fallback; the same function as FlashAttention without a window)",
        stacklevel=3,
    )
    return VanillaAttention


def _resolve_gin(name: Union[str, Path], folder: Path) -> Path:
    """An existing file as is; a bare name (with or without ``.gin``) inside ``folder``; any other
    path as given (a missing file is reported when the agent is built)."""
    path = Path(name)
    if path.is_file() or path.parent != Path("."):
        return path
    return folder / (path.name if path.suffix == ".gin" else f"{path.name}.gin")


def _local_epochs(folder: Path) -> List[int]:
    if not folder.is_dir():
        return []
    return sorted({int(m[1]) for p in folder.iterdir() if (m := _WEIGHTS_NAME.fullmatch(p.name))})


def _show(value) -> str:
    return value.__name__ if isinstance(value, type) else repr(value)


class PretrainedModel:
    """One model: its architecture (gin files, ``gin_overrides``), spaces, reward, tokenizer and
    where its checkpoints are (module docstring). Attribute names as in metamon; the gin files are
    resolved :class:`~pathlib.Path`\\ s (bare names under ``metamon/configs/{models,training}/``).
    ``battle_backend`` is kept for metamon compatibility; players here always use poke-env."""

    def __init__(
        self,
        model_gin_config: Union[str, Path],
        train_gin_config: Union[str, Path],
        model_name: str,
        tokenizer: str = "allreplays-v3",
        observation_space: str = "DefaultObservationSpace",
        action_space: str = "DefaultActionSpace",
        reward_function: str = "DefaultShapedReward",
        hf_cache_dir: Optional[Union[str, Path]] = None,
        default_checkpoint: int = 40,
        gin_overrides: Optional[dict] = None,
        hf_repo_id: Union[str, Path] = METAMON_HF_REPO,
        battle_backend: str = "poke-env",
    ):
        problem = run_name_problem(model_name)
        if problem is not None:
            raise MetamonRLError(f"PretrainedModel model_name {model_name!r} must be one folder name: {problem}")
        if isinstance(default_checkpoint, bool) or not isinstance(default_checkpoint, int) or default_checkpoint < 0:
            raise MetamonRLError(f"{model_name}: default_checkpoint must be an int >= 0, got {default_checkpoint!r}")
        if battle_backend not in BATTLE_BACKENDS:
            raise UnknownNameError("battle backend", battle_backend, BATTLE_BACKENDS)
        self.model_name = model_name
        self.model_gin_config = _resolve_gin(model_gin_config, MODEL_CONFIG_DIR)
        self.train_gin_config = _resolve_gin(train_gin_config, TRAINING_CONFIG_DIR)
        self.tokenizer = tokenizer
        self.observation_space = observation_space
        self.action_space = action_space
        self.reward_function = reward_function
        self.hf_cache_dir = hf_cache_dir
        self.default_checkpoint = default_checkpoint
        self.gin_overrides = dict(gin_overrides or {})
        self.hf_repo_id = str(hf_repo_id)
        self.battle_backend = battle_backend

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_name={self.model_name!r}, hf_repo_id={self.hf_repo_id!r})"

    # ----------------------------------------------------------------------------- checkpoints

    @property
    def _local_root(self) -> Optional[Path]:
        """``hf_repo_id`` as a local folder when one exists there (looked up at each use)."""
        local = Path(self.hf_repo_id).expanduser()
        return local if local.is_dir() else None

    def weights_filename(self, checkpoint: int) -> str:
        """``{model_name}/ckpts/policy_weights/policy_epoch_{N}.pt``: the file's path in the repository."""
        return f"{self.model_name}/ckpts/policy_weights/policy_epoch_{checkpoint}.pt"

    def _epoch(self, checkpoint: Optional[int]) -> int:
        epoch = self.default_checkpoint if checkpoint is None else checkpoint
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise MetamonRLError(f"{self.model_name}: checkpoint must be an epoch number >= 0, got {checkpoint!r}")
        return epoch

    def available_checkpoints(self) -> Optional[List[int]]:
        """The epochs whose weights a local ``hf_repo_id`` folder holds (sorted); None for a Hub
        repository (not listed without the network)."""
        if self._local_root is None:
            return None
        return _local_epochs(self._local_root / Path(self.weights_filename(0)).parent)

    def checkpoint_path(self, checkpoint: Optional[int] = None) -> Path:
        """The local path of the weights of epoch ``checkpoint`` (None: ``default_checkpoint``),
        downloaded into ``hf_cache_dir`` when ``hf_repo_id`` is a Hub repository. Raises
        :class:`~metamon.errors.MetamonError` naming the repository and file when it is missing
        or the Hub cannot be reached (listing a local folder's epochs)."""
        epoch = self._epoch(checkpoint)
        if self._local_root is not None:
            folder = self._local_root / Path(self.weights_filename(epoch)).parent
            for suffix in WEIGHT_SUFFIXES:
                path = folder / f"policy_epoch_{epoch}{suffix}"
                if path.is_file():
                    return path
            raise CheckpointNotFoundError(
                f"{self.model_name}: no weights for epoch {epoch} in {folder} (policy_epoch_{epoch}.pt or "
                f".safetensors); available epochs: {_local_epochs(folder) or 'none'}"
            )
        return self._download(epoch)

    def _cache_folder(self) -> Path:
        if self.hf_cache_dir is not None:
            return Path(self.hf_cache_dir).expanduser()
        return cache_dir() / PRETRAINED_CACHE_FOLDER

    def _download(self, epoch: int) -> Path:
        if not _REPO_ID.match(self.hf_repo_id):
            raise CheckpointNotFoundError(
                f"{self.model_name}: hf_repo_id {self.hf_repo_id!r} is neither an existing local folder nor a "
                f"Hub repository id (owner/name)"
            )
        folder = self._cache_folder()
        filename = self.weights_filename(epoch)
        target = folder / filename
        if target.is_file():
            return target
        cached = huggingface_hub.try_to_load_from_cache(self.hf_repo_id, filename, cache_dir=folder, repo_type="model")
        if isinstance(cached, str):  # metamon's own download (hf_hub_download(cache_dir=...)) left it there
            return Path(cached)
        hint = (
            f"On a machine with internet access download https://huggingface.co/{self.hf_repo_id}/resolve/main/"
            f"{filename} and put it at {target}, or pass hf_repo_id=<a local folder holding {filename}>."
        )
        return hub_download(self.hf_repo_id, filename, revision="main", local_dir=folder, repo_type="model",
                            offline_hint=hint)

    # ----------------------------------------------------------------------------- building

    def gin_bindings(self, action_temperature: float = 1.0) -> dict:
        """The bindings made before the gin files are parsed (module docstring): tokenizer,
        ``SigmaReparam.fast_init``, the attention type, then ``gin_overrides``; a policy temperature
        other than 1 as ``MetamonDiscrete.temperature`` (metamon 1.5.1's binding)."""
        bindings = {
            TOKENIZER_BINDING: self.tokenizer,
            FAST_INIT_BINDING: True,
            ATTENTION_BINDING: default_attention_type(),
        }
        bindings.update(self.gin_overrides)
        if action_temperature != 1.0:
            bindings[TEMPERATURE_BINDING] = float(action_temperature)
        return bindings

    def _configure(self, action_temperature: float = 1.0) -> dict:
        """Configure gin for this model (clears gin first); returns the agent's structure."""
        for path in (self.model_gin_config, self.train_gin_config):
            if not path.is_file():
                raise MetamonRLError(f"{self.model_name}: the gin file {path} does not exist")
        try:
            return configure_agent([self.model_gin_config, self.train_gin_config],
                                   params=self.gin_bindings(action_temperature), tokenizer=self.tokenizer)
        except AmagoError as error:
            raise MetamonRLError(f"cannot configure {self!r}: {error}") from error

    def _info(self, max_seq_len: int) -> RunInfo:
        return RunInfo(
            observation_space=self.observation_space,
            action_space=self.action_space,
            reward_function=self.reward_function,
            tokenizer=self.tokenizer,
            formats=[],
            max_seq_len=max_seq_len,
        )

    def run_info(self) -> RunInfo:
        """What a run directory of this model would record: spaces, reward, tokenizer and the
        model gin's ``max_seq_len`` (configures gin to read it)."""
        return self._info(self._configure()["max_seq_len"])

    def _build(self, action_temperature: float = 1.0) -> Tuple[torch.nn.Module, RunInfo]:
        structure = self._configure(action_temperature)
        info = self._info(structure["max_seq_len"])
        obs_space, action_space, _ = build_spaces(info)
        agent = build_amago_agent(obs_gym_space(obs_space, action_space), action_space.gym_space, **structure)
        return agent, info

    def architecture_shapes(self) -> Dict[str, Tuple[int, ...]]:
        """``{state-dict key: shape}`` of this model's agent, its parameters built on the ``meta``
        device (``accelerate.init_empty_weights``: no memory for weights; buffers are real and
        small; cached per architecture)."""
        key = (str(self.model_gin_config), str(self.train_gin_config), repr(sorted(self.gin_overrides.items())),
               self.observation_space, self.action_space, self.tokenizer)
        if key not in _ARCHITECTURES:
            with warnings.catch_warnings(), init_empty_weights(include_buffers=False):
                warnings.simplefilter("ignore")
                agent, _ = self._build()
            _ARCHITECTURES[key] = {k: tuple(v.shape) for k, v in agent.state_dict().items()}
        return dict(_ARCHITECTURES[key])

    def _load(self, agent: torch.nn.Module, path: Path) -> None:
        try:
            load_weights(agent, path)
        except AmagoError as error:
            raise MetamonRLError(f"cannot load {path} into {self!r}: {error}{_match_hint(path)}") from None

    def initialize_agent(self, checkpoint: Optional[int] = None, log: bool = False,
                         action_temperature: float = 1.0) -> torch.nn.Module:
        """The agent with the weights of epoch ``checkpoint`` (None: ``default_checkpoint``; 0: the
        random initialisation, nothing fetched), on the CPU in eval mode. ``log`` logs what was
        loaded (INFO). ``action_temperature`` divides the policy's logits
        (``MetamonDiscrete.temperature``; 1: none)."""
        agent, _ = self._initialize(checkpoint, action_temperature)
        if log:
            count = sum(p.numel() for p in agent.parameters())
            logger.info("%r: %s parameters, checkpoint %s", self, f"{count:,}", self._epoch(checkpoint))
        return agent

    def _initialize(self, checkpoint: Optional[int],
                    action_temperature: float = 1.0) -> Tuple[torch.nn.Module, RunInfo]:
        epoch = self._epoch(checkpoint)
        path = None if epoch == 0 else self.checkpoint_path(epoch)  # fetch before building a big model
        agent, info = self._build(action_temperature)
        if path is not None:
            self._load(agent, path)
        agent.eval()
        return agent, info


_ARCHITECTURES: Dict[tuple, Dict[str, Tuple[int, ...]]] = {}


def _local_model_folder(amago_ckpt_dir: Union[str, Path], model_name: str) -> Path:
    ckpts = Path(amago_ckpt_dir) / model_name / "ckpts"
    if not ckpts.is_dir():
        raise CheckpointNotFoundError(
            f"{ckpts} does not exist: expected the run {model_name!r} inside {amago_ckpt_dir} "
            f"({model_name}/ckpts/policy_weights/policy_epoch_N.pt or .safetensors)"
        )
    return Path(amago_ckpt_dir)


class LocalPretrainedModel(PretrainedModel):
    """A model trained by the user (metamon's or our trainer): weights in
    ``{amago_ckpt_dir}/{model_name}/ckpts/policy_weights/policy_epoch_{N}.pt`` (or
    ``.safetensors``), architecture from the given gin files (other arguments as
    :class:`PretrainedModel`). :class:`CheckpointNotFoundError` (a ``FileNotFoundError``) when
    ``…/ckpts`` does not exist."""

    def __init__(
        self,
        amago_ckpt_dir: Union[str, Path],
        model_gin_config: Union[str, Path],
        train_gin_config: Union[str, Path],
        model_name: str,
        tokenizer: str = "allreplays-v3",
        observation_space: str = "DefaultObservationSpace",
        action_space: str = "DefaultActionSpace",
        reward_function: str = "DefaultShapedReward",
        hf_cache_dir: Optional[Union[str, Path]] = None,
        default_checkpoint: int = 40,
        gin_overrides: Optional[dict] = None,
        battle_backend: str = "poke-env",
    ):
        super().__init__(
            model_gin_config, train_gin_config, model_name, tokenizer=tokenizer,
            observation_space=observation_space, action_space=action_space, reward_function=reward_function,
            hf_cache_dir=hf_cache_dir, default_checkpoint=default_checkpoint, gin_overrides=gin_overrides,
            hf_repo_id=_local_model_folder(amago_ckpt_dir, model_name), battle_backend=battle_backend,
        )


def _base_instance(base_model) -> PretrainedModel:
    if isinstance(base_model, PretrainedModel):
        return base_model
    if isinstance(base_model, str):
        return get_pretrained_model(base_model)
    if callable(base_model):
        instance = base_model()
        if isinstance(instance, PretrainedModel):
            return instance
    raise MetamonRLError(
        f"base_model must be a registry name, a PretrainedModel class or instance, got {base_model!r}"
    )


class LocalFinetunedModel(PretrainedModel):
    """A finetune of ``base_model`` (a registry class such as ``SmallRL``, its name, or an
    instance) saved in ``{amago_ckpt_dir}/{model_name}/ckpts/policy_weights/``: the model gin,
    ``gin_overrides``, tokenizer, observation and action spaces are the base model's; the training
    gin, reward and backend default to the base model's. Our own run directories work too
    (``.safetensors`` weights); when the run has a ``run.json`` its spaces and tokenizer must be
    the base model's (:class:`MetamonRLError` naming the difference)."""

    def __init__(
        self,
        base_model,
        amago_ckpt_dir: Union[str, Path],
        model_name: str,
        default_checkpoint: int,
        train_gin_config: Optional[Union[str, Path]] = None,
        reward_function: Optional[str] = None,
        battle_backend: Optional[str] = None,
    ):
        base = _base_instance(base_model)
        super().__init__(
            base.model_gin_config, train_gin_config or base.train_gin_config, model_name,
            tokenizer=base.tokenizer, observation_space=base.observation_space, action_space=base.action_space,
            reward_function=reward_function or base.reward_function, default_checkpoint=default_checkpoint,
            gin_overrides=base.gin_overrides, hf_repo_id=_local_model_folder(amago_ckpt_dir, model_name),
            battle_backend=battle_backend or base.battle_backend,
        )
        self.base_model = base
        run_dir = Path(amago_ckpt_dir) / model_name
        if (run_dir / "run.json").is_file():
            recorded = RunInfo.load(run_dir)
            differences = [
                f"{name}: run {getattr(recorded, name)!r}, base model {getattr(self, field)!r}"
                for name, field in (("observation_space", "observation_space"), ("action_space", "action_space"),
                                    ("tokenizer", "tokenizer"))
                if getattr(recorded, name) != getattr(self, field)
            ]
            if differences:
                raise MetamonRLError(
                    f"the run {run_dir} was not trained with the inputs of {base!r}: " + "; ".join(differences)
                )


# ---------------------------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------------------------


def register_pretrained_model(cls_or_factory=None, name: Optional[str] = None, *, replace: bool = False):
    """Register a :class:`PretrainedModel` subclass (or a zero-argument factory returning one)
    under ``name`` (default: its ``__name__``); usable as a class decorator. Registering another
    object under a taken name needs ``replace=True``. Returns ``cls_or_factory``."""
    if cls_or_factory is None:
        return lambda target: register_pretrained_model(target, name, replace=replace)
    if not callable(cls_or_factory):
        raise MetamonRLError(f"register_pretrained_model needs a class or a factory, got {cls_or_factory!r}")
    key = name or cls_or_factory.__name__
    if key in PRETRAINED_MODELS and PRETRAINED_MODELS[key] is not cls_or_factory and not replace:
        raise MetamonRLError(f"a pretrained model named {key!r} is already registered (pass replace=True)")
    PRETRAINED_MODELS[key] = cls_or_factory
    return cls_or_factory


def get_pretrained_model_names() -> List[str]:
    """The registered names, sorted."""
    return sorted(PRETRAINED_MODELS)


def get_pretrained_model(name: str) -> PretrainedModel:
    """A new instance of the registered model ``name``; :class:`~metamon.errors.UnknownNameError`
    listing the names."""
    if name not in PRETRAINED_MODELS:
        raise UnknownNameError("pretrained model", name, PRETRAINED_MODELS)
    model = PRETRAINED_MODELS[name]()
    if not isinstance(model, PretrainedModel):
        raise MetamonRLError(f"the registry entry {name!r} built a {type(model).__name__}, not a PretrainedModel")
    return model


def matching_pretrained_models(weights: Union[str, Path]) -> List[str]:
    """The registered models whose architecture has exactly the keys and shapes of the weights
    file ``weights`` (``.pt`` or ``.safetensors``), each built on the ``meta`` device. Entries
    that cannot be built here (a gin file or vocabulary missing) are skipped. Configures gin."""
    saved = tensor_shapes(weights)
    matches = []
    for name in get_pretrained_model_names():
        try:
            if get_pretrained_model(name).architecture_shapes() == saved:
                matches.append(name)
        except (MetamonError, AmagoError, OSError) as error:
            logger.debug("cannot build the architecture of %s: %s", name, error)
    return matches


def _match_hint(path: Path) -> str:
    """What to add to a loading error: the registered models the weights fit (nothing when the
    file itself cannot be read: that error says it all)."""
    try:
        matches = matching_pretrained_models(path)
    except AmagoError:
        return ""
    if not matches:
        return ". No registered pretrained model has this checkpoint's architecture."
    return f". The checkpoint has the architecture of the registered model(s) {', '.join(matches)}."


# metamon's published models. Paper models: DefaultObservationSpace (W 87, N 48), allreplays-v3,
# MinimalActionSpace (A 9), DefaultShapedReward; training gins under metamon 1.5.1's names.
_PAPER = dict(tokenizer="allreplays-v3", observation_space="DefaultObservationSpace",
              action_space="MinimalActionSpace", reward_function="DefaultShapedReward", battle_backend="poke-env")
# Gen-9-era models: DefaultObservationSpace-v1 vocabulary, DefaultActionSpace (A 13).
_GEN9 = dict(tokenizer="DefaultObservationSpace-v1", action_space="DefaultActionSpace")
_FLASH_32 = {ATTENTION_BINDING: FlashAttention, WINDOW_BINDING: (32, 0)}
_PERCEIVER_TOKENIZER = {PERCEIVER_TOKENIZER_BINDING: "DefaultObservationSpace-v1"}
_PAC_TEAM_PREVIEW = "PAC-TeamPreviewObservationSpace"
_PAC_OPPONENT_MOVE = "PAC-OpponentMoveObservationSpace"


class _PublishedModel(PretrainedModel):
    """A published entry: ``DEFAULTS`` are its :class:`PretrainedModel` arguments; keyword
    arguments override them (e.g. ``hf_repo_id`` of a mirror, ``hf_cache_dir``)."""

    DEFAULTS: dict = {}

    def __init__(self, **overrides):
        super().__init__(**{**self.DEFAULTS, **overrides})


def _published(name: str, hub_dir: str, checkpoint: int, model_gin: str, train_gin: str, summary: str,
               **fields) -> type:
    """Define and register the entry ``name`` (a :class:`_PublishedModel` subclass)."""
    defaults = dict(model_name=hub_dir, default_checkpoint=checkpoint, model_gin_config=model_gin,
                    train_gin_config=train_gin, **fields)
    cls = type(name, (_PublishedModel,), {"DEFAULTS": defaults, "__doc__": summary, "__module__": __name__})
    return register_pretrained_model(cls)


SmallIL = _published("SmallIL", "small-il", 40, "small_agent", "il", "Small, imitation learning.", **_PAPER)
SmallILFA = _published("SmallILFA", "small-il-filled-actions", 40, "small_agent", "il",
                       "Small, imitation learning on replays with filled-in actions.", **_PAPER)
SmallRL = _published("SmallRL", "small-rl", 40, "small_agent", "exp_rl", "Small, offline RL (exp filter).", **_PAPER)
SmallRL_ExtremeFilter = _published(
    "SmallRL_ExtremeFilter", "small-rl-exp-extreme", 38, "small_agent", "exp_rl",
    "Small, offline RL with an extreme exp filter (beta 5; the training gin, parsed later, binds beta again).",
    gin_overrides={"exp_filter.beta": 5.0, "exp_filter.clip_weights_high": 100.0}, **_PAPER)
SmallRL_BinaryFilter = _published("SmallRL_BinaryFilter", "small-rl-binary", 40, "small_agent", "binary_rl",
                                  "Small, offline RL (binary filter).", **_PAPER)
SmallRL_Aug = _published("SmallRL_Aug", "small-rl-aug", 40, "small_agent", "binary_rl",
                         "Small, offline RL on augmented data.", **_PAPER)
SmallRL_MaxQ = _published("SmallRL_MaxQ", "small-rl-maxq", 40, "small_agent", "binary_maxq_rl",
                          "Small, offline RL with a max-Q actor term.", **_PAPER)
MediumIL = _published("MediumIL", "medium-il", 40, "medium_agent", "il", "Medium, imitation learning.", **_PAPER)
MediumRL = _published("MediumRL", "medium-rl", 40, "medium_agent", "exp_rl", "Medium, offline RL.", **_PAPER)
MediumRL_Aug = _published("MediumRL_Aug", "medium-rl-aug", 40, "medium_agent", "exp_rl",
                          "Medium, offline RL on augmented data.", **_PAPER)
MediumRL_MaxQ = _published("MediumRL_MaxQ", "medium-rl-maxq", 40, "medium_agent", "binary_maxq_rl",
                           "Medium, offline RL with a max-Q actor term.", **_PAPER)
LargeIL = _published("LargeIL", "large-il", 40, "large_agent", "il", "Large, imitation learning.", **_PAPER)
LargeRL = _published("LargeRL", "large-rl", 40, "large_agent", "exp_rl", "Large, offline RL.", **_PAPER)
SyntheticRLV0 = _published("SyntheticRLV0", "synthetic-rl-v0", 40, "synthetic_agent", "binary_rl",
                           "Large, offline RL on real + self-play data (v0).", **_PAPER)
SyntheticRLV1 = _published("SyntheticRLV1", "synthetic-rl-v1", 40, "synthetic_agent", "binary_rl",
                           "Large, offline RL on real + self-play data (v1).", **_PAPER)
SyntheticRLV1_SelfPlay = _published("SyntheticRLV1_SelfPlay", "synthetic-rl-v1+sp", 48, "synthetic_agent",
                                    "binary_rl", "SyntheticRLV1 finetuned on its own self-play.", **_PAPER)
SyntheticRLV1_PlusPlus = _published("SyntheticRLV1_PlusPlus", "synthetic-rl-v1++", 38, "synthetic_agent",
                                    "binary_maxq_rl", "SyntheticRLV1 finetuned with a max-Q actor term.", **_PAPER)
SyntheticRLV2 = _published("SyntheticRLV2", "synthetic-rl-v2", 48, "synthetic_multitaskagent", "binary_rl",
                           "Large multi-task agent, offline RL on real + self-play data (the paper's best).",
                           **_PAPER)

SmallRLGen9Beta = _published(
    "SmallRLGen9Beta", "small-rl-gen9beta", 24, "small_multitaskagent", "exp_rl",
    "Small multi-task agent for gen 9 (windowed attention, 32 turns).",
    observation_space=_PAC_TEAM_PREVIEW, reward_function="DefaultShapedReward", gin_overrides=_FLASH_32,
    battle_backend="pokeagent", **_GEN9)
Abra = _published(
    "Abra", "abra", 40, "medium_multitaskagent", "binary_rl", "Medium multi-task agent for gen 9 (window 32).",
    observation_space=_PAC_TEAM_PREVIEW, reward_function="DefaultShapedReward", gin_overrides=_FLASH_32,
    battle_backend="pokeagent", **_GEN9)
Minikazam = _published(
    "Minikazam", "minikazam", 40, "minikazam", "binary_rl", "Small Perceiver + GRU agent for gen 9.",
    observation_space=_PAC_OPPONENT_MOVE, reward_function="AggressiveShapedReward",
    gin_overrides=_PERCEIVER_TOKENIZER, battle_backend="pokeagent", **_GEN9)
Kadabra = _published(
    "Kadabra", "kadabra", 46, "medium_multitaskagent", "binary_rl",
    "Medium multi-task agent for gen 9 (window 32; the un-patched TeamPreview space).",
    observation_space="TeamPreviewObservationSpace", reward_function="DefaultShapedReward",
    gin_overrides=_FLASH_32, battle_backend="pokeagent", **_GEN9)
Kadabra2 = _published(
    "Kadabra2", "kadabra2", 44, "alakazam2", "alakazam2", "Perceiver multi-task agent for gen 9.",
    observation_space=_PAC_OPPONENT_MOVE, reward_function="AggressiveShapedReward",
    gin_overrides=_PERCEIVER_TOKENIZER, battle_backend="pokeagent", **_GEN9)
Kadabra3 = _published(
    "Kadabra3", "kadabra3", 20, "alakazam2", "alakazam3", "Kadabra2's architecture, alakazam3 training.",
    observation_space=_PAC_OPPONENT_MOVE, reward_function="AggressiveShapedReward",
    gin_overrides=_PERCEIVER_TOKENIZER, battle_backend="pokeagent", **_GEN9)
Kadabra4 = _published(
    "Kadabra4", "kadabra4", 50, "alakazam4", "alakazam3", "Deeper Perceiver multi-task agent for gen 9.",
    observation_space=_PAC_OPPONENT_MOVE, reward_function="AggressiveShapedReward",
    gin_overrides=_PERCEIVER_TOKENIZER, battle_backend="pokeagent", **_GEN9)
Alakazam = _published(
    "Alakazam", "alakazam", 8, "alakazam4", "alakazam3", "Kadabra4's architecture on the OpponentMove space.",
    observation_space="OpponentMoveObservationSpace", reward_function="AggressiveShapedReward",
    gin_overrides=_PERCEIVER_TOKENIZER, battle_backend="metamon", **_GEN9)
Superkazam = _published(
    "Superkazam", "superkazam", 50, "superkazam", "alakazam3", "The largest Perceiver multi-task agent.",
    observation_space="OpponentMoveObservationSpace", reward_function="AggressiveShapedReward",
    gin_overrides=_PERCEIVER_TOKENIZER, battle_backend="metamon", **_GEN9)
Kakuna = _published(
    "Kakuna", "kakuna", 34, "superkazam", "kakuna", "Superkazam's architecture, kakuna training.",
    observation_space="OpponentMoveObservationSpace", reward_function="AggressiveShapedReward",
    gin_overrides=_PERCEIVER_TOKENIZER, battle_backend="metamon", **_GEN9)


def registry_table(markdown: bool = False) -> str:
    """The registry as a table: name, repository folder, default epoch, model gin, training gin,
    observation space, action space, reward, tokenizer, gin overrides (``list`` prints it;
    ``docs/pretrained.md`` holds the markdown version)."""
    header = ("name", "hub dir", "epoch", "model gin", "train gin", "observation space", "action space",
              "reward", "tokenizer", "gin overrides")
    rows = []
    for name in PRETRAINED_MODELS:  # registration order: the paper models, then the Gen-9-era ones
        model = get_pretrained_model(name)
        overrides = ", ".join(f"{k} = {_show(v)}" for k, v in model.gin_overrides.items()) or "-"
        rows.append((name, model.model_name, str(model.default_checkpoint), model.model_gin_config.stem,
                     model.train_gin_config.stem, model.observation_space, model.action_space, model.reward_function,
                     model.tokenizer, overrides))
    if markdown:
        lines = [header, tuple("---" for _ in header), *rows]
        return "\n".join("| " + " | ".join(row) + " |" for row in lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in (header, *rows))


# ---------------------------------------------------------------------------------------------
# the "pretrained" player kind
# ---------------------------------------------------------------------------------------------


def build_pretrained_player(factory: PlayerFactory, spec: PlayerSpec, username: Optional[str], wrap,
                            kwargs: dict) -> Player:
    """A PolicyPlayer of the registered model ``spec.target`` at epoch ``spec.epoch`` (None: its
    default); one agent and inference batcher per (model, epoch) and factory."""
    model = get_pretrained_model(spec.target)
    epoch = model._epoch(spec.epoch)

    def load():
        agent, info = model._initialize(epoch)
        agent.to(factory.device)
        return agent, info, InferenceBatcher(agent, capacity=factory.max_concurrent_battles)

    agent, info, batcher = factory.shared(("pretrained", spec.target, epoch), load, lambda loaded: loaded[2].close())
    return policy_player(factory, spec, username, wrap, kwargs, agent, info, batcher)


def check_pretrained_spec(spec: PlayerSpec) -> None:
    """The model is registered and, when its checkpoints are in a local folder, holds the epoch."""
    model = get_pretrained_model(spec.target)
    epoch = model._epoch(spec.epoch)
    available = model.available_checkpoints()
    if available is not None and epoch != 0 and epoch not in available:
        raise CheckpointNotFoundError(
            f"player spec {spec}: {model!r} has no epoch {epoch} (available epochs: {available or 'none'})"
        )


register_player_kind("pretrained", build_pretrained_player, check_pretrained_spec)


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m metamon.rl.pretrained",
                                     description="metamon's pretrained models; share runs on the Hugging Face Hub.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="print the registered models")
    listing.add_argument("--markdown", action="store_true", help="a markdown table")
    push = commands.add_parser("push", help="upload a run directory to a Hub model repository")
    push.add_argument("--run", required=True, help="the run directory (SAVE_DIR/RUN_NAME)")
    push.add_argument("--repo", required=True, help="the Hub repository id, owner/name (created if missing)")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument("--epochs", type=int, nargs="+", default=None, help="epochs to upload (default: all saved)")
    push.add_argument("--eval_json", nargs="+", default=(),
                      help="files written by `python -m metamon.rl.evaluate --json_out` to show in the model card")
    pull = commands.add_parser("pull", help="download a pushed run into a new run directory")
    pull.add_argument("--repo", required=True, help="the Hub repository id, owner/name")
    pull.add_argument("--dest", required=True, help="the run directory to create")
    pull.add_argument("--revision", default=None, help="branch, tag or commit (default: main)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The CLI (module docstring); bad input prints one line on stderr and exits with 2."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            print(registry_table(markdown=args.markdown))
        elif args.command == "push":
            url = push_run(args.run, args.repo, private=args.private, epochs=args.epochs, eval_json=args.eval_json)
            print(f"pushed {args.run} to {url}")
        else:
            run_dir = pull_run(args.repo, args.dest, revision=args.revision)
            print(f"pulled {args.repo} into {run_dir}; play it as run:{run_dir}")
    except (MetamonError, AmagoError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
