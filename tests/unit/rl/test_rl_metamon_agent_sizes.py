"""Whole agents built with metamon's turn encoders and actors have the key counts and element
totals measured on the real code (metamon_models.md §1, §11.1): small RL and Minikazam."""

import json

import gin
import numpy as np
import pytest
from gymnasium import spaces

from metamon.amago.agent import Agent
from metamon.amago.build import build_agent
from metamon.amago.nets.traj_encoders import GRUTrajEncoder, TformerTrajEncoder
from metamon.rl.actors import MetamonMaskedActor
from metamon.rl.tstep_encoders import MetamonPerceiverTstepEncoder, MetamonTstepEncoder

HEADS = """
Agent.actor_type = @MetamonMaskedActor
Agent.pass_obs_keys_to_actor = ["illegal_actions"]
MetamonMaskedActor.n_layers = 2
MetamonMaskedActor.d_hidden = {width}
Agent.critic_type = @NCritics
Agent.popart = True
Agent.num_critics = 4
NCritics.d_hidden = {width}
NCritics.n_layers = 2
SigmaReparam.fast_init = True
"""

SMALL = HEADS.format(width=300) + """
TformerTrajEncoder.d_model = 512
TformerTrajEncoder.n_heads = 8
TformerTrajEncoder.d_ff = 2048
TformerTrajEncoder.n_layers = 3
"""

MINIKAZAM = HEADS.format(width=256) + """
MetamonPerceiverTstepEncoder.extra_emb_dim = 12
MetamonPerceiverTstepEncoder.d_model = 64
MetamonPerceiverTstepEncoder.n_layers = 3
MetamonPerceiverTstepEncoder.n_heads = 4
MetamonPerceiverTstepEncoder.latent_tokens = 5
MetamonPerceiverTstepEncoder.numerical_tokens = 3
MetamonPerceiverTstepEncoder.max_tokens_per_turn = 64
GRUTrajEncoder.d_hidden = 400
GRUTrajEncoder.n_layers = 2
GRUTrajEncoder.d_output = 300
"""

# name: (gin, encoder, trajectory encoder, W, N, V, A, max_seq_len, keys, elements, encoder keys)
MODELS = {
    "SmallRL": (SMALL, MetamonTstepEncoder, TformerTrajEncoder, 87, 48, 1407, 9, 200, 168, 13_938_567, 45),
    "Minikazam": (MINIKAZAM, MetamonPerceiverTstepEncoder, GRUTrajEncoder, 106, 55, 2541, 13, 64, 134, 4_761_813, 87),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_agent_key_count_and_size(name, tmp_path):
    config, encoder, traj, W, N, V, A, seq, n_keys, n_elements, n_encoder_keys = MODELS[name]
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps({f"w{i}": i for i in range(V)}))
    gin.parse_config(config)
    gin.bind_parameter(f"{encoder.__name__}.tokenizer", str(vocab))
    obs = spaces.Dict({
        "text_tokens": spaces.Box(-1, V, (W,), np.int32),
        "numbers": spaces.Box(-10, 10, (N,), np.float32),
        "illegal_actions": spaces.Box(0, 1, (A,), bool),
    })
    agent = build_agent(obs, spaces.Discrete(A), seq, encoder, traj, Agent)
    assert type(agent.actor) is MetamonMaskedActor
    state = agent.state_dict()
    assert len(state) == n_keys
    assert sum(v.numel() for v in state.values()) == n_elements
    assert sum(k.startswith("tstep_encoder.") for k in state) == n_encoder_keys
    assert state["actor.base.out_layer.weight"].shape == (7 * A, 300 if name == "SmallRL" else 256)  # G = 7
