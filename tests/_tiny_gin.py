"""The tiny agent that the run-folder, registry and player tests build: the gin text of a model
with every width at 16 (one layer each), small enough to build and play in well under a second.
Lives in ``tests/`` (on ``sys.path`` through ``tests/conftest.py``) so unit and integration tests
share it."""

from __future__ import annotations


def tiny_agent_gin(tstep_encoder: str = "ScratchTstepEncoder", traj_encoder: str = "TformerTrajEncoder",
                   max_seq_len: int = 8, traj_d_model: int = 16, traj_layers: int = 1,
                   actor_d_hidden: int = 16) -> str:
    """A model gin file's text: ``tstep_encoder`` (a scratch or metamon-style timestep
    encoder) into ``traj_encoder`` (Transformer or GRU; both are bound, only the chosen one is
    used), a masked actor and two critics."""
    return f"""
import metamon.amago.agent
import metamon.amago.nets.actor_critic
import metamon.amago.nets.traj_encoders
import metamon.amago.nets.transformer
import metamon.rl.tstep_encoders
import metamon.rl.actors
import metamon.rl.experiment

MetamonAMAGOExperiment.agent_type = @agent.Agent
MetamonAMAGOExperiment.tstep_encoder_type = @{tstep_encoder}
MetamonAMAGOExperiment.traj_encoder_type = @{traj_encoder}
MetamonAMAGOExperiment.max_seq_len = {max_seq_len}
{tstep_encoder}.d_model = 16
{tstep_encoder}.n_layers = 1
{tstep_encoder}.n_heads = 2
{tstep_encoder}.scratch_tokens = 2
{tstep_encoder}.numerical_tokens = 2
TformerTrajEncoder.d_model = {traj_d_model}
TformerTrajEncoder.n_layers = {traj_layers}
TformerTrajEncoder.n_heads = 2
TformerTrajEncoder.d_ff = 32
GRUTrajEncoder.d_hidden = 16
GRUTrajEncoder.n_layers = 1
GRUTrajEncoder.d_output = 16
Agent.actor_type = @MetamonMaskedActor
Agent.pass_obs_keys_to_actor = ["illegal_actions"]
Agent.num_critics = 2
MetamonMaskedActor.d_hidden = {actor_d_hidden}
NCritics.d_hidden = 16
"""
