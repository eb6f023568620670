"""Shared fixtures.

Tests never touch the network: the Hub is forced offline and every server is a local Showdown
started on a free port for this test session.
"""

import importlib.util
import os
import sys
from functools import partial
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import gin  # noqa: E402 - after the environment variables above
import pytest  # noqa: E402

from metamon.server import LocalShowdownServer  # noqa: E402


@pytest.fixture(autouse=True)
def clean_gin():
    """Every test starts and ends with gin's global configuration empty."""
    gin.clear_config()
    yield
    gin.clear_config()


@pytest.fixture(scope="session")
def load_script():
    """``load_script(path, name)``: a script that is not a package module (``benchmarks/*.py``)
    imported under ``name``."""

    def load(path, name: str):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # as an import does (dataclasses look their module up there)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def tiny_rl():
    """A game-free agent and batch for loss-level tests. ``tiny_rl.agent(seed=0, actor_hidden=16,
    agent_cls=Agent, **agent_kwargs)`` builds an ``agent_cls`` over a 3-d Box observation and 4
    actions (16-wide nets, one transformer layer, max_seq_len 8, NCritics unless ``critic_type``
    is given); ``tiny_rl.batch()`` collates two trajectories of 6 and 4 observations with random
    actions and rewards (seeded); ``tiny_rl.one_action_policy(agent, k)`` makes its policy play
    action k; ``tiny_rl.A`` is 4."""
    import numpy as np
    import torch
    from gymnasium import spaces

    from metamon.amago.agent import Agent
    from metamon.amago.loading import RLData, RLData_pad_collate
    from metamon.amago.nets.actor_critic import Actor, NCritics
    from metamon.amago.nets.traj_encoders import TformerTrajEncoder
    from metamon.amago.nets.tstep_encoders import FFTstepEncoder

    A = 4

    def agent(seed=0, actor_hidden=16, agent_cls=Agent, **kwargs):
        torch.manual_seed(seed)
        kwargs.setdefault("critic_type", partial(NCritics, d_hidden=16))
        return agent_cls(
            spaces.Dict({"x": spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)}),
            spaces.Box(-np.inf, np.inf, (A + 1,), dtype=np.float32), spaces.Discrete(A), max_seq_len=8,
            tstep_encoder_type=partial(FFTstepEncoder, n_layers=1, d_hidden=16, d_output=16, normalize_inputs=False),
            traj_encoder_type=partial(TformerTrajEncoder, d_model=16, n_heads=2, d_ff=32, n_layers=1,
                                      dropout_ff=0.0, dropout_emb=0.0),
            actor_type=partial(Actor, d_hidden=actor_hidden), **kwargs,
        )

    def batch():
        g = torch.Generator().manual_seed(3)
        items = []
        for T in (6, 4):
            dones = torch.zeros(T - 1, 1, dtype=torch.bool)
            dones[-1] = True
            actions = torch.nn.functional.one_hot(torch.randint(A, (T - 1,), generator=g), A).float()
            items.append(RLData(obs={"x": torch.rand(T, 3, generator=g) * 2 - 1},
                                rews=torch.randn(T - 1, 1, generator=g), dones=dones, actions=actions,
                                time_idxs=torch.arange(T)[:, None]))
        return RLData_pad_collate(items)

    def one_action_policy(agent, k):
        """Set the actor's (and target actor's) logits so that softmax(k) = 1 − O(e⁻⁶⁰) in every state."""
        G = len(agent.gammas)
        with torch.no_grad():
            for actor in (agent.actor, agent.target_actor):
                actor.base.out_layer.weight.zero_()
                actor.base.out_layer.bias.zero_()
                actor.base.out_layer.bias.view(G, agent.action_dim)[:, k] = 60.0

    return SimpleNamespace(agent=agent, batch=batch, one_action_policy=one_action_policy, A=A)


@pytest.fixture(scope="session")
def showdown_server(tmp_path_factory):
    """One real local Showdown server (127.0.0.1, free port) for the whole test session."""
    server = LocalShowdownServer(run_dir=tmp_path_factory.mktemp("showdown_run"))
    server.start(timeout=120)
    yield server
    server.stop()
