"""Helpers for the pretrained-registry and run-sharing tests: tiny registry entries, metamon-layout
checkpoint folders, and the policy logits of an agent for a fixed observation sequence."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from _tiny_gin import tiny_agent_gin

from metamon.rl.dataset import obs_gym_space
from metamon.rl.pretrained import PretrainedModel
from metamon.rl.run_dir import build_spaces
from metamon.tokenizer import metamon_vocabs

TINY_TOKENIZER = "metamon-gemma-v1"


def write_tiny_gin(folder: Path, name: str = "tiny_model.gin", d_hidden: int = 16) -> Path:
    """A tiny model gin file (no training hyper-parameters) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(tiny_agent_gin("MetamonTstepEncoder", actor_d_hidden=d_hidden))
    return path


def tiny_model(model_gin: Path, repo: Path, model_name: str = "tiny-rl", **kwargs) -> PretrainedModel:
    """A tiny registry-style model whose checkpoints live in the local folder ``repo``."""
    fields = dict(tokenizer=TINY_TOKENIZER, observation_space="DefaultObservationSpace",
                  action_space="MinimalActionSpace", reward_function="DefaultShapedReward", default_checkpoint=4,
                  hf_repo_id=repo)
    fields.update(kwargs)
    return PretrainedModel(model_gin, "il", model_name, **fields)


def save_metamon_checkpoint(agent: torch.nn.Module, repo: Path, model_name: str, epoch: int) -> Path:
    """``torch.save(agent.state_dict(), ...)`` at ``{repo}/{model_name}/ckpts/policy_weights/
    policy_epoch_{epoch}.pt``, the way metamon writes its checkpoints."""
    path = repo / model_name / "ckpts" / "policy_weights" / f"policy_epoch_{epoch}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(agent.state_dict(), path)
    return path


def observation_sequence(info, length: int = 5, seed: int = 0):
    """``(obs, rl2s, time_idxs)`` of one sequence (batch 1) drawn from ``info``'s spaces: every
    observation key, a few legal/illegal actions, previous rewards and one-hot actions."""
    obs_space, action_space, _ = build_spaces(info)
    space = obs_gym_space(obs_space, action_space)
    space.seed(seed)
    steps = [space.sample() for _ in range(length)]
    obs = {k: torch.as_tensor(np.stack([s[k] for s in steps]))[None] for k in space.spaces}
    obs["numbers"] = obs["numbers"].clamp(-3, 3)
    for key in obs:
        if key.endswith("_tokens"):  # the Box's high is len(tokenizer): one past the last id
            obs[key] = obs[key].clamp(max=int(space[key].high.max()) - 1)
    n_actions = obs["illegal_actions"].shape[-1]
    rng = np.random.default_rng(seed)
    rl2s = np.zeros((1, length, n_actions + 1), dtype=np.float32)
    for t in range(1, length):
        rl2s[0, t, 0] = rng.normal()
        rl2s[0, t, 1 + rng.integers(n_actions)] = 1.0
    time_idxs = torch.arange(length)[None, :, None]
    return obs, torch.as_tensor(rl2s), time_idxs


@torch.no_grad()
def policy_logits(agent: torch.nn.Module, obs: dict, rl2s: torch.Tensor, time_idxs: torch.Tensor) -> torch.Tensor:
    """(1, L, G, A) actor logits of ``agent`` (put in eval mode) over the whole sequence."""
    agent.eval()
    emb = agent.tstep_encoder(obs, rl2s)
    state, _ = agent.traj_encoder(emb, time_idxs)
    return agent.actor.actor_network_forward(state, straight_from_obs={"illegal_actions": obs["illegal_actions"]})


# Bindings appended after a registry model gin to shrink it for CPU tests: every width and depth
# smaller, the structure (classes, key names, heads, tokens, spaces) kept.
SHRINK_BINDINGS = """
MetamonTstepEncoder.d_model = 16
MetamonTstepEncoder.n_heads = 2
MetamonTstepEncoder.n_layers = 2
MetamonPerceiverTstepEncoder.d_model = 16
MetamonPerceiverTstepEncoder.n_heads = 2
MetamonPerceiverTstepEncoder.n_layers = 2
TformerTrajEncoder.d_model = 32
TformerTrajEncoder.n_heads = 2
TformerTrajEncoder.d_ff = 48
TformerTrajEncoder.n_layers = 2
GRUTrajEncoder.d_hidden = 24
GRUTrajEncoder.d_output = 20
MetamonMaskedActor.d_hidden = 24
MetamonMaskedResidualActor.feature_dim = 24
MetamonMaskedResidualActor.residual_ff_dim = 40
NCritics.d_hidden = 24
NCriticsTwoHot.d_hidden = 24
"""


def shrunk(model: PretrainedModel, folder: Path, repo: Path) -> PretrainedModel:
    """``model`` with its model gin followed by :data:`SHRINK_BINDINGS` (a file in ``folder``) and
    its checkpoints in the local folder ``repo``; everything else (training gin, spaces, tokenizer,
    gin_overrides) as the entry has it."""
    folder.mkdir(parents=True, exist_ok=True)
    gin_file = folder / f"{model.model_gin_config.stem}_shrunk.gin"
    gin_file.write_text(model.model_gin_config.read_text() + SHRINK_BINDINGS)
    return PretrainedModel(
        gin_file, model.train_gin_config, model.model_name, tokenizer=model.tokenizer,
        observation_space=model.observation_space, action_space=model.action_space,
        reward_function=model.reward_function, default_checkpoint=model.default_checkpoint,
        gin_overrides=model.gin_overrides, hf_repo_id=repo, battle_backend=model.battle_backend,
    )


def fake_metamon_vocabularies(cache: Path, monkeypatch) -> None:
    """Cache stand-ins of metamon's vocabulary files (the sizes V of the real ones, made-up words)
    under ``cache/tokenizers`` and make the checksum table accept them (the real files are not
    redistributed and tests never download)."""
    monkeypatch.setenv("METAMON_CACHE_DIR", str(cache))
    for name, entry in list(metamon_vocabs.METAMON_VOCABULARIES.items()):
        data = json.dumps({f"word{i:05d}": i for i in range(entry.size)}).encode()
        path = cache / "tokenizers" / entry.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        fake = dataclasses.replace(entry, sha256_prefix=hashlib.sha256(data).hexdigest()[:8])
        monkeypatch.setitem(metamon_vocabs.METAMON_VOCABULARIES, name, fake)
