"""`Experiment`: the accelerate-based offline training loop (AMAGO 3.1.1 API, no env rollouts).

Lifecycle (``start()``): ``init_dsets`` → ``init_dloaders`` → ``init_model`` →
``init_checkpoints`` → ``init_logger`` (→ parameter summary if ``verbose``). Then ``learn()``.

Documented deviations from AMAGO 3.1.1:

* No gym envs: the observation space (``gym.spaces.Dict``) and the action space
  (``gym.spaces.Discrete``) are fields; ``rl2_space = Box(-inf, inf, (A+1,))`` is computed
  directly. Env collection, ``interact`` and ``evaluate_test`` are not part of this class;
  ``evaluate_val()`` is a hook that returns a metrics dict (default ``{}``), logged under "val".
* Checkpoints are pickle-free (safetensors + JSON, see ``metamon.amago.checkpoints``) and the
  weight files are ``.safetensors``. Checkpoint N is the state after finishing epoch N (0-based);
  ``load_checkpoint(N)`` continues with epoch N+1 (AMAGO re-runs epoch N). A checkpoint is
  written every ``ckpt_interval`` epochs **and** after the final epoch, training state first and
  weights last, so that it appears all at once; ``start()`` cleans up after a run killed while
  saving (:class:`~metamon.amago.run_layout.RunLayout`).
* Gradient accumulation zeroes the gradients *after* the optimizer step of an update, so an
  update sees the mean gradient of its ``batches_per_update`` micro-batches.
* An update with a non-finite loss or gradient is skipped, counted and logged, and
  ``max_nonfinite_updates`` of them in a row stop the run (``train_step``); weights that are not
  finite are never saved (``checkpoints.save_weights``).
* The agent owns its loss masks (``AgentOutput``; no ``edit_actor_mask`` / ``edit_critic_mask``
  hooks): a dataset marks steps whose action is unknown with ``obs[MISSING_ACTION_KEY]``. The
  agent is built by the free function :func:`metamon.amago.build.build_agent`.

* Damping (an agent built with ``damping``, :mod:`metamon.amago.reference`): the LR schedule is
  ``damping.controlled_lr_lambda`` (warm-up × the controller's LR multiplier), the agent's
  reference is reset whenever its weights are set (``init_model``, ``load_policy_weights``,
  ``load_checkpoint``), :meth:`Experiment.after_update` runs after every optimizer update, and the
  damping counters / controller state are saved in the training state's ``progress.json``.

Run directory: ``{ckpt_base_dir}/{run_name}/`` laid out as :class:`~metamon.amago.run_layout.RunLayout`
says (checkpoints under ``ckpts/``, ``logs/metrics.csv``, ``wandb_logs/``). ``logs/metrics.csv``
is in long format, one row per metric and log call, columns
``key, epoch, gradient_steps, metric, value`` (numbers only; appended across resumes).

Losses (``compute_loss``): the agent returns an :class:`~metamon.amago.agent.AgentOutput` (losses
and their masks: padding and unknown actions left out), and
:func:`~metamon.amago.agent.weighted_loss` gives "Actor Loss", "Critic Loss" (0.0 if the agent has
no critic loss) and the optimised "Total Loss" = Actor + critic_loss_weight · Critic.
"""

from __future__ import annotations

import csv
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import gin
import gymnasium as gym
import numpy as np
import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm import tqdm

from metamon.amago import checkpoints
from metamon.amago.agent import SCHEDULE_STATE_PREFIXES, weighted_loss
from metamon.amago.build import build_agent, rl2_space_of
from metamon.amago.damping import controlled_lr_lambda
from metamon.amago.loading import PADDED_SAMPLING_MODES, RLData_pad_collate, RLDataset
from metamon.amago.run_layout import RunLayout
from metamon.amago.utils import AmagoError, amago_warning
from metamon.files import atomic_write

_MIXED_PRECISION = ("no", "fp16", "bf16")
_CSV_HEADER = ["key", "epoch", "gradient_steps", "metric", "value"]


def _seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and ``random`` from the worker's torch seed
    (torch sets it to base_seed + worker_id, base_seed drawn from the main process's RNG)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


_LOSS_TERMS = ("Actor Loss", "Critic Loss", "Total Loss")


def _nonfinite_loss_term(metrics: dict) -> Optional[str]:
    """The first of "Actor Loss", "Critic Loss", "Total Loss" in ``metrics`` that is not finite,
    or None (one host sync when the total is finite, which it is unless a term is not)."""
    if bool(torch.isfinite(metrics["Total Loss"].detach()).all()):
        return None
    for name in _LOSS_TERMS:
        if not bool(torch.isfinite(torch.as_tensor(metrics[name]).detach()).all()):
            return name
    return "Total Loss"


def _grad_norm(module: torch.nn.Module) -> float:
    """L2 norm of all existing gradients of ``module``'s parameters, sqrt(Σ_p ||∇p||²)."""
    sq = [p.grad.detach().float().pow(2).sum() for p in module.parameters() if p.grad is not None]
    return math.sqrt(float(torch.stack(sq).sum())) if sq else 0.0


@gin.configurable
@dataclass
class Experiment:
    """Offline sequence-RL training run (gin-configurable dataclass; see the module docstring).

    Required: ``run_name``, ``ckpt_base_dir``, ``max_seq_len``, ``dataset`` (an ``RLDataset``;
    may be None when only ``build_agent`` is used), ``tstep_encoder_type``,
    ``traj_encoder_type``, ``agent_type`` (classes, usually ``@Name`` gin references),
    ``obs_space`` (``gym.spaces.Dict``), ``action_space`` (``gym.spaces.Discrete``).
    ``batch_size`` is per process; ``log_interval`` counts micro-batches.
    """

    run_name: str
    ckpt_base_dir: str
    max_seq_len: int
    dataset: Optional[RLDataset]
    tstep_encoder_type: type
    traj_encoder_type: type
    agent_type: type
    obs_space: gym.spaces.Dict
    action_space: gym.spaces.Discrete

    # schedule
    epochs: int = 1000
    start_learning_at_epoch: int = 0
    train_batches_per_epoch: int = 1000
    val_interval: Optional[int] = None
    ckpt_interval: Optional[int] = None
    always_save_latest: bool = True

    # optimisation
    batches_per_update: int = 1
    batch_size: int = 24
    dloader_workers: int = 6
    learning_rate: float = 1e-4
    critic_loss_weight: float = 10.0
    lr_warmup_steps: int = 500
    grad_clip: float = 1.0
    max_nonfinite_updates: int = 10
    l2_coeff: float = 1e-3
    mixed_precision: str = "no"
    padded_sampling: str = "none"
    seed: Optional[int] = None

    # logging
    log_to_wandb: bool = False
    wandb_project: Optional[str] = field(default_factory=lambda: os.environ.get("AMAGO_WANDB_PROJECT"))
    wandb_entity: Optional[str] = field(default_factory=lambda: os.environ.get("AMAGO_WANDB_ENTITY"))
    wandb_group_name: Optional[str] = None
    verbose: bool = True
    log_interval: int = 300

    def __post_init__(self):
        if not isinstance(self.obs_space, gym.spaces.Dict):
            raise AmagoError(f"obs_space must be a gymnasium spaces.Dict, got {self.obs_space!r}")
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise AmagoError(f"action_space must be a gymnasium spaces.Discrete, got {self.action_space!r}")
        if self.mixed_precision not in _MIXED_PRECISION:
            raise AmagoError(f"mixed_precision must be one of {_MIXED_PRECISION}, got {self.mixed_precision!r}")
        if self.padded_sampling not in PADDED_SAMPLING_MODES:
            raise AmagoError(f"padded_sampling must be one of {PADDED_SAMPLING_MODES}, got {self.padded_sampling!r}")
        for name in ("batches_per_update", "batch_size", "log_interval", "max_seq_len", "max_nonfinite_updates"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise AmagoError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        self.accelerator = Accelerator(
            gradient_accumulation_steps=self.batches_per_update,
            mixed_precision=self.mixed_precision,
            log_with="wandb" if self.log_to_wandb else None,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
            device_placement=True,
        )
        if self.seed is not None:
            set_seed(self.seed + self.accelerator.process_index)
        self.layout = RunLayout.of(self.ckpt_base_dir, self.run_name)
        self.epoch = 0  # the epoch running now, or the last finished one
        self.next_epoch = 0  # the first epoch learn() will run
        self.grad_update_counter = 0
        self.nonfinite_updates = 0  # updates skipped for a non-finite loss or gradient (train_step)
        self._nonfinite_streak = 0  # ... of them in a row
        self._nonfinite_cause: Optional[str] = None  # what marked the update in progress
        self._buffers_before_update: Optional[list] = None  # (buffer, copy) at its first micro-batch
        self._policy_aclr = None

    # -----------------------------------------------------------------------------------------
    # paths
    # -----------------------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        return self.layout.root

    @property
    def ckpt_dir(self) -> Path:
        return self.layout.ckpts

    def policy_weights_path(self, epoch: int) -> Path:
        return self.layout.policy_weights(epoch)

    def training_state_path(self, epoch: int) -> Path:
        return self.layout.training_state(epoch)

    def available_epochs(self, training_states: bool = True) -> list[int]:
        """Sorted epochs with a complete training state (or with policy weights if False)."""
        return self.layout.training_state_epochs() if training_states else self.layout.weight_epochs()

    # -----------------------------------------------------------------------------------------
    # setup
    # -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Build data, model, optimizer, checkpoint folders and loggers (in AMAGO's order)."""
        self.init_dsets()
        self.init_dloaders()
        self.init_model()
        self.init_checkpoints()
        self.init_logger()
        if self.verbose:
            self.summary()

    def init_dsets(self) -> None:
        if self.dataset is None:
            raise AmagoError(
                "Experiment.dataset is None; training needs an RLDataset (DoNothingDataset for eval-only runs)"
            )
        self.dataset.configure_from_experiment(self)

    def init_dloaders(self) -> None:
        """DataLoader of ``train_batches_per_epoch`` batches per process (after accelerate sharding)."""
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.dloader_workers,
            collate_fn=RLData_pad_collate,
            worker_init_fn=_seed_worker,
            pin_memory=self.accelerator.device.type == "cuda",
        )
        self.train_dloader = self.accelerator.prepare(loader)

    @property
    def rl2_space(self) -> gym.spaces.Box:
        """[previous reward, previous one-hot action]: Box(-inf, inf, (A+1,), float32)."""
        return rl2_space_of(self.action_space)

    def build_agent(self) -> torch.nn.Module:
        """A fresh (unprepared) agent: :func:`metamon.amago.build.build_agent` with the spaces,
        max_seq_len, the encoder types and agent_type."""
        return build_agent(
            obs_space=self.obs_space,
            action_space=self.action_space,
            max_seq_len=self.max_seq_len,
            tstep_encoder_type=self.tstep_encoder_type,
            traj_encoder_type=self.traj_encoder_type,
            agent_type=self.agent_type,
        )

    def init_optimizer(self, policy) -> torch.optim.Optimizer:
        """AdamW(trainable params, lr=learning_rate, weight_decay=l2_coeff) (overridable hook)."""
        return torch.optim.AdamW(list(policy.trainable_params), lr=self.learning_rate, weight_decay=self.l2_coeff)

    def init_model(self) -> None:
        """Agent, optimizer and warm-up schedule, prepared by accelerate.

        LR factor(step) = w(step)·m with w(step) = step / max(1, lr_warmup_steps) while
        step < lr_warmup_steps, else 1 (so the very first update runs at lr 0, as in AMAGO), and m
        the agent's damping controller's LR multiplier (1 without one): ``damping.controlled_lr_lambda``.
        The agent's damping reference is then reset to its (initial) weights.
        """
        policy = self.build_agent()
        optimizer = self.init_optimizer(policy)
        damping = getattr(policy, "damping", None)
        controller = None if damping is None else damping.controller
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, controlled_lr_lambda(self.lr_warmup_steps, controller))
        self._policy_aclr, self.optimizer, self.lr_schedule = self.accelerator.prepare(policy, optimizer, schedule)
        self.optimizer.zero_grad()
        self.grad_update_counter = 0
        self._reset_reference()

    def _reset_reference(self) -> None:
        """The agent's damping reference ← its current weights (agents without damping: nothing)."""
        reset = getattr(self.policy, "reset_reference", None)
        if reset is not None:
            reset()

    def init_checkpoints(self) -> None:
        """Checkpoint folders, after the main process has cleaned up what writers killed in an
        earlier process left behind (:meth:`RunLayout.recover <metamon.amago.run_layout.RunLayout.recover>`:
        stale temporary files, staging directories, an epoch whose weights file was not yet
        written); every action is reported as a warning."""
        if self.accelerator.is_main_process:
            actions = self.layout.recover()
            if actions:
                amago_warning(f"{self.run_dir}: cleaned up after an interrupted save: {'; '.join(actions)}")
        layout = self.layout
        for folder in (layout.training_states_dir, layout.policy_weights_dir, layout.latest_weights.parent):
            folder.mkdir(parents=True, exist_ok=True)
        self.accelerator.wait_for_everyone()
        self.epoch = 0
        self.next_epoch = 0

    def init_logger(self) -> None:
        """Operative gin config to ckpts/config.txt, CSV at logs/metrics.csv, wandb if enabled."""
        self.metrics_csv = self.layout.metrics_csv
        if not self.accelerator.is_main_process:
            return
        gin_config = gin.operative_config_str()
        atomic_write(self.layout.config_txt, gin_config)
        self.metrics_csv.parent.mkdir(parents=True, exist_ok=True)
        if self.log_to_wandb:
            wandb_dir = self.layout.wandb_dir
            wandb_dir.mkdir(parents=True, exist_ok=True)
            self.accelerator.init_trackers(
                project_name=self.wandb_project or "amago",
                config=_gin_config_to_dict(gin_config),
                init_kwargs={
                    "wandb": {
                        "name": self.run_name,
                        "entity": self.wandb_entity,
                        "group": self.wandb_group_name,
                        "dir": str(wandb_dir),
                    }
                },
            )

    def summary(self) -> None:
        """Print parameter counts per submodule (main process only)."""
        if not self.accelerator.is_main_process:
            return
        policy = self.policy
        total = sum(p.numel() for p in policy.parameters())
        trainable = sum(p.numel() for p in policy.trainable_params)
        lines = [f"Experiment {self.run_name!r}: {type(policy).__name__} on {self.accelerator.device}"]
        for name, child in policy.named_children():
            lines.append(f"  {name:<20s} {sum(p.numel() for p in child.parameters()):>12,d} params")
        lines.append(f"  total {total:,d} params, {trainable:,d} trained")
        lines.append(f"  run dir: {self.run_dir}")
        print("\n".join(lines))

    # -----------------------------------------------------------------------------------------
    # model access
    # -----------------------------------------------------------------------------------------

    @property
    def policy_aclr(self):
        """The accelerate-prepared agent (DDP-wrapped in multi-process runs)."""
        if self._policy_aclr is None:
            raise AmagoError("the Experiment has no model yet: call start() first")
        return self._policy_aclr

    @property
    def policy(self):
        """The unwrapped agent."""
        return self.accelerator.unwrap_model(self.policy_aclr)

    # -----------------------------------------------------------------------------------------
    # training
    # -----------------------------------------------------------------------------------------

    def learn(self) -> None:
        """Run epochs ``next_epoch … epochs−1``: validate, dataset hook, train, checkpoint (no env
        collection)."""
        for epoch in range(self.next_epoch, self.epochs):
            self.epoch = epoch
            self.policy_aclr.eval()
            if self.val_interval and epoch % self.val_interval == 0:
                val_metrics = self.evaluate_val()
                if val_metrics:
                    self.log(val_metrics, key="val")
            self.accelerator.wait_for_everyone()
            dset_metrics = self.dataset.on_end_of_collection(self)
            if dset_metrics:
                self.log(dset_metrics, key="dataset")
            self.next_epoch = epoch + 1
            if not self.dataset.ready_for_training:
                amago_warning(
                    f"epoch {epoch}: dataset {self.dataset.get_description()} is not ready; skipping training")
                continue
            if epoch < self.start_learning_at_epoch:
                continue
            self._train_epoch(epoch)
            self.accelerator.wait_for_everyone()
            if (self.ckpt_interval and epoch % self.ckpt_interval == 0) or epoch == self.epochs - 1:
                self.save_checkpoint()
            if self.always_save_latest and self.accelerator.is_main_process:
                checkpoints.save_weights(self.policy, self.layout.latest_weights)

    def _train_epoch(self, epoch: int) -> None:
        self.policy_aclr.train()
        bar = tqdm(
            total=self.train_batches_per_epoch,
            desc=f"{self.run_name} epoch {epoch}",
            disable=not (self.verbose and self.accelerator.is_main_process),
        )
        for i, batch in enumerate(self.train_dloader):
            micro_step = epoch * self.train_batches_per_epoch + i
            log_step = micro_step % self.log_interval == 0
            updates_before = self.grad_update_counter
            metrics = self.train_step(batch, log_step=log_step)  # the prepared DataLoader placed it
            if self.grad_update_counter != updates_before:
                self.after_update(batch)
            if log_step:
                self.log(metrics, key="train-update")
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['Total Loss'].item():.4f}")
        bar.close()

    def train_step(self, batch, log_step: bool) -> dict:
        """One micro-batch: loss, backward; on sync steps clip, sync targets, step, zero grads.

        Inside ``accelerator.accumulate``: backward of "Total Loss" (``compute_loss``; accelerate
        divides by batches_per_update). On the update's last micro-batch:
        clip the global grad L2 norm to ``grad_clip``; ``soft_sync_targets()`` (before the step, as
        AMAGO does, so the value estimates use critic weights one update stale);
        ``grad_update_counter += 1``; on log steps add "Learning Rate" and the grad norms
        (:meth:`grad_norms`, measured *before* clipping); then optimizer and schedule step and the
        grads are zeroed.

        **Non-finite guard, decided per update.** After each micro-batch's backward a non-finite
        "Total Loss" marks the update the micro-batch belongs to (its accumulated gradients are
        spoilt), naming the first non-finite of "Actor Loss", "Critic Loss", "Total Loss"; on the
        last micro-batch a non-finite global gradient norm (from clipping) marks it too, except
        under fp16, whose GradScaler skips overflowing steps itself. Processes agree (any
        process's mark marks the update everywhere). A marked update is skipped whole: its
        gradients are dropped, the buffers its forward passes moved (input-normalisation and
        PopArt statistics, spectral-norm vectors: every buffer is copied at the update's first
        micro-batch) are restored, and there is no target sync, optimizer or schedule step, nor
        ``grad_update_counter`` increment. It is counted in ``nonfinite_updates``, reported
        by an ``AmagoWarning`` naming the update, the epoch and the cause, and logged as
        "Non-finite Updates Skipped" (also in the returned metrics); ``max_nonfinite_updates``
        skipped in a row raise an ``AmagoError`` instead, so a diverged run stops before anything
        non-finite is applied or saved. (Under DeepSpeed the engine steps inside ``backward``: the
        guard then only counts and stops.)
        """
        with self.accelerator.accumulate(self.policy_aclr):
            if self._buffers_before_update is None:
                self._buffers_before_update = [(b, b.detach().clone()) for b in self.policy.buffers()]
            metrics = self.compute_loss(batch, log_step=log_step)
            self.accelerator.backward(metrics["Total Loss"])
            if self._nonfinite_cause is None:
                self._nonfinite_cause = _nonfinite_loss_term(metrics)
            if self.accelerator.sync_gradients:
                cause, self._nonfinite_cause = self._nonfinite_cause, None
                buffers, self._buffers_before_update = self._buffers_before_update, None
                if self.accelerator.num_processes > 1:
                    mark = torch.tensor([float(cause is not None)], device=self.accelerator.device)
                    marked = self.accelerator.gather(mark)
                    if cause is None and bool(marked.any()):
                        cause = "loss on another process"
                pre_clip_norms = self.grad_norms() if log_step and cause is None else {}
                if cause is None:
                    norm = self.accelerator.clip_grad_norm_(self.policy_aclr.parameters(), self.grad_clip)
                    if norm is not None and self.accelerator.scaler is None and not math.isfinite(float(norm)):
                        cause = f"gradient (global L2 norm {float(norm)})"
                if cause is not None:
                    with torch.no_grad():
                        for buffer, before in buffers:
                            buffer.copy_(before)
                    self._skip_nonfinite_update(cause, metrics)
                    return metrics
                self._nonfinite_streak = 0
                self.policy.soft_sync_targets()
                self.grad_update_counter += 1
                if log_step:
                    metrics["Learning Rate"] = self.lr_schedule.get_last_lr()[0]
                    metrics.update(pre_clip_norms)
                    metrics["Non-finite Updates Skipped"] = self.nonfinite_updates
            self.optimizer.step()
            self.lr_schedule.step()
            self.optimizer.zero_grad()
        return metrics

    def _skip_nonfinite_update(self, cause: str, metrics: dict) -> None:
        """Drop the update in progress (see ``train_step``); raise after too many in a row."""
        self.optimizer.zero_grad()
        self.nonfinite_updates += 1
        self._nonfinite_streak += 1
        metrics["Non-finite Updates Skipped"] = self.nonfinite_updates
        self.log({"Non-finite Updates Skipped": self.nonfinite_updates}, key="train-update")
        where = f"update {self.grad_update_counter + 1} (epoch {self.epoch})"
        limit = f"max_nonfinite_updates = {self.max_nonfinite_updates}"
        if self._nonfinite_streak >= self.max_nonfinite_updates:
            raise AmagoError(
                f"{self._nonfinite_streak} updates in a row had a non-finite loss or gradient; the "
                f"last, {where}, a non-finite {cause}. Training stopped before anything non-finite "
                f"was applied or saved ({limit}). Look for NaN or inf in the data, or lower the "
                "learning rate."
            )
        amago_warning(
            f"skipped {where}: non-finite {cause} ({self._nonfinite_streak} in a row, "
            f"{self.nonfinite_updates} in all; {limit})"
        )

    def after_update(self, batch) -> None:
        """Hook after each optimizer update (``batch``: its last micro-batch): the agent's damping
        bookkeeping (per-update KL, controller, reference refresh; ``Agent.after_update``). A
        damping controller's new LR multiplier is applied at once: the LRs are recomputed from the
        schedule's own lambda at its current step (the next update uses them)."""
        hook = getattr(self.policy, "after_update", None)
        if hook is None:
            return
        hook(batch)
        damping = getattr(self.policy, "damping", None)
        if damping is not None and damping.controller is not None:
            schedule = getattr(self.lr_schedule, "scheduler", self.lr_schedule)  # accelerate wraps it
            for group, factor in zip(self.optimizer.param_groups, schedule.lr_lambdas):
                group["lr"] = group["initial_lr"] * factor(schedule.last_epoch)
            schedule._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def grad_norms(self) -> dict:
        """L2 norms of the current gradients of the actor, critics, both encoders (and the
        critic's own encoders when the agent has them) and of all of them together ("Global Grad
        Norm (pre-clip)", the norm ``grad_clip`` is compared with). ``train_step`` calls it before
        clipping. With fp16 loss scaling the norms are divided by the scaler's current scale."""
        policy = self.policy
        modules = {
            "Actor Grad Norm": policy.actor,
            "Critic Grad Norm": policy.critics,
            "TrajEncoder Grad Norm": policy.traj_encoder,
            "TstepEncoder Grad Norm": policy.tstep_encoder,
        }
        for name, encoder in zip(("Critic TstepEncoder", "Critic TrajEncoder"), getattr(policy, "critic_encoders", ())):
            modules[f"{name} Grad Norm"] = encoder
        scaler = getattr(self.accelerator, "scaler", None)
        scale = float(scaler.get_scale()) if scaler is not None and scaler.is_enabled() else 1.0
        norms = {name: _grad_norm(module) / scale for name, module in modules.items()}
        norms["Global Grad Norm (pre-clip)"] = _grad_norm(self.policy_aclr) / scale
        return norms

    def compute_loss(self, batch, log_step: bool) -> dict:
        """Masked mean losses of one batch ("Total Loss" with its graph, "Actor Loss", "Critic
        Loss") plus batch sizes and the agent's metrics (module docstring). The agent gets the
        update index ``grad_update_counter`` (updates finished before this batch) for its
        schedules (critic warm-up, filter gate)."""
        out = self.policy_aclr(batch, log_step=log_step, update=self.grad_update_counter)
        total, actor, critic = weighted_loss(out, self.critic_loss_weight)
        B, L_1 = out.actor.shape[:2]
        metrics = {"Total Loss": total, "Actor Loss": actor, "Critic Loss": 0.0 if critic is None else critic}
        metrics["Sequence Length"] = L_1 + 1
        metrics["Batch Size (in Timesteps)"] = B * L_1
        metrics["Unmasked Batch Size (in Timesteps)"] = int(out.actor_mask[:, :, 0].sum())
        metrics.update(out.metrics)
        return metrics

    def evaluate_val(self) -> dict:
        """Validation hook, called every ``val_interval`` epochs; returned metrics are logged under
        "val". The offline core has no envs, so the default does nothing and returns ``{}``."""
        return {}

    # -----------------------------------------------------------------------------------------
    # logging
    # -----------------------------------------------------------------------------------------

    def log(self, metrics: dict, key: str) -> None:
        """Log ``{key}/{name}`` values: 0-dim tensors become floats, other tensors are dropped.

        Every numeric value is appended to logs/metrics.csv (main process); wandb (if on) also
        gets "Epoch" and "gradient_steps".
        """
        clean = {}
        for name, value in metrics.items():
            if isinstance(value, torch.Tensor):
                if value.dim() != 0:
                    continue
                value = value.detach().item()
            clean[name] = value
        if not self.accelerator.is_main_process:
            return
        rows = [
            [key, self.epoch, self.grad_update_counter, name, value]
            for name, value in clean.items()
            if isinstance(value, (int, float, bool, np.number))
        ]
        if rows:
            self.metrics_csv.parent.mkdir(parents=True, exist_ok=True)
            new_file = not self.metrics_csv.exists() or self.metrics_csv.stat().st_size == 0
            with open(self.metrics_csv, "a", newline="") as f:
                writer = csv.writer(f)
                if new_file:
                    writer.writerow(_CSV_HEADER)
                writer.writerows(rows)
        if self.log_to_wandb:
            wandb_metrics = {f"{key}/{name}": value for name, value in clean.items()}
            wandb_metrics.update({"Epoch": self.epoch, "gradient_steps": self.grad_update_counter})
            self.accelerator.log(wandb_metrics)

    # -----------------------------------------------------------------------------------------
    # checkpoints
    # -----------------------------------------------------------------------------------------

    def save_checkpoint(self) -> None:
        """The full training state, then the policy weights (main process) of epoch ``self.epoch``.

        The order makes the epoch's checkpoint appear all at once
        (:class:`~metamon.amago.run_layout.RunLayout`): an old weights file of this epoch is
        deleted first, the training state is published atomically, and the weights file, written
        last, commits the epoch."""
        weights = self.policy_weights_path(self.epoch)
        if self.accelerator.is_main_process:
            weights.unlink(missing_ok=True)
        checkpoints.save_training_state(
            self.training_state_path(self.epoch),
            model=self.policy,
            optimizer=self.optimizer,
            scheduler=self.lr_schedule,
            extra=self._checkpoint_extra(),
            process_index=self.accelerator.process_index,
            num_processes=self.accelerator.num_processes,
            barrier=self.accelerator.wait_for_everyone,
        )
        if self.accelerator.is_main_process:
            checkpoints.save_weights(self.policy, weights)

    def _checkpoint_extra(self) -> dict:
        extra = {"epoch": self.epoch, "grad_update_counter": self.grad_update_counter}
        damping = getattr(self.policy, "damping", None)
        if damping is not None:
            extra["damping"] = damping.state_dict()
        return extra

    def _missing_checkpoint(self, what: str, epoch: int, path: Path, training_states: bool) -> AmagoError:
        if not self.run_dir.is_dir():
            return AmagoError(f"run directory {self.run_dir} does not exist (run_name={self.run_name!r})")
        return AmagoError(
            f"no {what} for epoch {epoch} at {path}; available epochs: "
            f"{self.available_epochs(training_states) or 'none'}"
        )

    def load_checkpoint(self, epoch: int, resume_training_state: bool = True) -> None:
        """Load checkpoint ``epoch`` (call after ``start()``, on every process).

        True: model, optimizer, schedule, RNG states and counters from
        ``training_states/{run_name}_epoch_{epoch}``; ``learn()`` then continues with epoch+1.
        False: only the weights from ``policy_weights/policy_epoch_{epoch}.safetensors`` (a warm
        start: counters, optimizer and schedule are unchanged).
        """
        if not resume_training_state:
            path = self.policy_weights_path(epoch)
            if not path.is_file():
                raise self._missing_checkpoint("policy weights", epoch, path, training_states=False)
            self.load_policy_weights(path)
            return
        path = self.training_state_path(epoch)
        if not path.is_dir() or not checkpoints.is_complete(path):
            raise self._missing_checkpoint("complete training state", epoch, path, training_states=True)
        policy, optimizer = self.policy, self.optimizer  # AmagoError if start() was not called
        extra = checkpoints.load_training_state(
            path,
            model=policy,
            optimizer=optimizer,
            scheduler=self.lr_schedule,
            process_index=self.accelerator.process_index,
        )
        self.epoch = int(extra["epoch"])
        self.next_epoch = self.epoch + 1
        self.grad_update_counter = int(extra["grad_update_counter"])
        damping = getattr(policy, "damping", None)
        if damping is not None and "damping" in extra:
            damping.load_state_dict(extra["damping"])
        self._reset_reference()

    def load_policy_weights(self, path) -> None:
        """Load an Agent state dict (``.safetensors`` or ``.pt``) into the policy (strict; clear
        error on mismatch) to start a run from it, then reset the agent's damping reference and
        its advantage reference (``advantage_policy="initial"``) to these weights. Run-start state
        (:data:`SCHEDULE_STATE_PREFIXES`: the filter gate, the advantage reference) is not taken
        from the file: the new run starts its own, whatever the source's configuration had."""
        checkpoints.load_weights(self.policy, path, strict=True, skip_prefixes=SCHEDULE_STATE_PREFIXES)
        self._reset_reference()
        set_reference = getattr(self.policy, "set_advantage_reference", None)
        if set_reference is not None:
            set_reference()


def _gin_config_to_dict(config: str) -> dict[str, Any]:
    """``key = value`` lines of an operative gin config as a flat dict (for wandb)."""
    out = {}
    for line in config.splitlines():
        if " = " in line and not line.startswith(("#", " ")):
            key, value = line.split(" = ", 1)
            out[key.strip()] = value.strip()
    return out
