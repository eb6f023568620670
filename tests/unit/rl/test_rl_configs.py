"""Our own gin configs parse with our training configs; tiny and small ones build agents that run
on replay batches.

metamon's configs (same names and values as metamon's) are checked value by value, and their
networks against the reference's state-dict sizes, in test_rl_metamon_configs.py.
"""

from datetime import datetime

import gin
import pytest
import torch
from gymnasium import spaces

from metamon.amago.cli_utils import use_config
from metamon.amago.loading import RLData_pad_collate
from metamon.amago.nets.traj_encoders import TformerTrajEncoder
from metamon.data.parsed_replay_dset import ParsedReplayDataset
from metamon.data.trajectory_file import trajectory_filename, write_trajectory
from metamon.interface import (
    DefaultActionSpace,
    DefaultShapedReward,
    TeamPreviewObservationSpace,
    TokenizedObservationSpace,
    UniversalMove,
    UniversalPokemon,
    UniversalState,
)
from metamon.rl import MODEL_CONFIG_DIR
from metamon.rl.actors import MetamonMaskedActor
from metamon.rl.agent_config import configure_agent
from metamon.rl.dataset import MetamonAMAGODataset, obs_gym_space
from metamon.rl.experiment import MetamonAMAGOExperiment
from metamon.rl.scratch_tstep_encoder import ScratchTstepEncoder
from metamon.tokenizer import DEFAULT_TOKENIZER, get_tokenizer

CONFIGS = MODEL_CONFIG_DIR.parent
# metamon's model configs and the training configs with metamon-only values: test_rl_metamon_configs.py
METAMON_MODELS = {
    "small_agent", "small_multitaskagent", "small_rnn", "medium_agent", "medium_multitaskagent", "large_agent",
    "synthetic_agent", "synthetic_multitaskagent", "minikazam", "alakazam", "alakazam2", "alakazam4", "superkazam",
}
LEAKY_TRAINING = {"alakazam", "alakazam2", "alakazam3", "kakuna"}  # other optimiser values (§7)
# The Gemma configs are tested with the Gemma encoder (test_rl_gemma_encoder.py).
MODELS = sorted(p.stem for p in (CONFIGS / "models").glob("*.gin")
                if not p.stem.startswith("gemma_") and p.stem not in METAMON_MODELS)
TRAINING = sorted(p.stem for p in (CONFIGS / "training").glob("*.gin") if p.stem not in LEAKY_TRAINING)
FMT = "gen9ou"



def parse(model, training):
    use_config({}, [str(CONFIGS / "models" / f"{model}.gin"), str(CONFIGS / "training" / f"{training}.gin")],
               finalize=False)


def q(name):
    return gin.query_parameter(name)


def ref_name(value):
    """``@Name`` in a binding -> the configurable's short name."""
    return value.selector.split(".")[-1]


@pytest.mark.parametrize("training", TRAINING)
@pytest.mark.parametrize("model", MODELS)
def test_every_pair_parses(model, training):
    parse(model, training)
    agent = ref_name(q("MetamonAMAGOExperiment.agent_type"))
    assert agent in ("Agent", "MultiTaskAgent")
    assert ref_name(q(f"{agent}.actor_type")) == "MetamonMaskedActor"
    assert q(f"{agent}.pass_obs_keys_to_actor") == ["illegal_actions"]
    assert ref_name(q("MetamonAMAGOExperiment.tstep_encoder_type")) == "ScratchTstepEncoder"
    assert ref_name(q("MetamonAMAGOExperiment.traj_encoder_type")) == "TformerTrajEncoder"
    assert ref_name(q(f"{agent}.critic_type")) == ("NCritics" if agent == "Agent" else "NCriticsTwoHot")
    if training.startswith("vanilla_selfplay"):
        return  # the self-play configs' own values: test_rl_selfplay_configs.py
    assert q("MetamonAMAGOExperiment.learning_rate") == 1.5e-4
    assert q("MetamonAMAGOExperiment.l2_coeff") == 1e-4
    assert q("MetamonAMAGOExperiment.grad_clip") == 1.5
    assert q("MetamonAMAGOExperiment.critic_loss_weight") == (1.0 if training.startswith("critic_first") else 10.0)
    assert q("MetamonAMAGOExperiment.lr_warmup_steps") == 1000


# (agent, max_seq_len, tstep d_model/layers/heads/scratch/numerical/mask_aug,
#  traj d_model/layers/heads/d_ff, head d_hidden, num_critics)
SIZES = {
    "tiny_agent": ("Agent", 64, (32, 1, 2, 2, 2, False), (64, 2, 4, 128), 64, 4),
    "small_agent_400": ("Agent", 200, (100, 3, 5, 4, 6, False), (400, 3, 8, 1600), 300, 4),
}


# Every shipped model config of ours has a row (KeyError otherwise) and every row a shipped config.
@pytest.mark.parametrize("model", sorted(set(MODELS) | set(SIZES)))
def test_model_sizes(model):
    parse(model, "binary_rl")
    agent, seq, tstep, traj, hidden, critics = SIZES[model]
    assert ref_name(q("MetamonAMAGOExperiment.agent_type")) == agent
    assert q("MetamonAMAGOExperiment.max_seq_len") == seq
    names = ("d_model", "n_layers", "n_heads", "scratch_tokens", "numerical_tokens", "token_mask_aug")
    assert tuple(q(f"ScratchTstepEncoder.{n}") for n in names) == tstep
    assert q("ScratchTstepEncoder.extra_emb_dim") == 18 and q("ScratchTstepEncoder.dropout") == 0.05
    assert tuple(q(f"TformerTrajEncoder.{n}") for n in ("d_model", "n_layers", "n_heads", "d_ff")) == traj
    critic = "NCritics" if agent == "Agent" else "NCriticsTwoHot"
    assert q("MetamonMaskedActor.d_hidden") == hidden == q(f"{critic}.d_hidden")
    assert q(f"{agent}.num_critics") == critics
    if critic == "NCriticsTwoHot":
        assert (q("NCriticsTwoHot.output_bins"), q("NCriticsTwoHot.min_return"),
                q("NCriticsTwoHot.max_return"), q("NCriticsTwoHot.use_symlog")) == (96, -1100, 1100, False)


def test_training_values():
    parse("tiny_agent", "il")
    for agent in ("Agent", "MultiTaskAgent"):
        assert (q(f"{agent}.online_coeff"), q(f"{agent}.offline_coeff")) == (0.0, 1.0)
        assert q(f"{agent}.use_multigamma") is False and q(f"{agent}.fake_filter") is True
    for training, filter_name in (("binary_rl", "binary_filter"), ("exp_rl", "exp_filter")):
        gin.clear_config()
        parse("tiny_agent", training)
        for agent, k in (("Agent", 1), ("MultiTaskAgent", 3)):
            assert (q(f"{agent}.online_coeff"), q(f"{agent}.offline_coeff")) == (0.0, 1.0)
            assert (q(f"{agent}.reward_multiplier"), q(f"{agent}.tau")) == (10.0, 0.004)
            assert q(f"{agent}.num_actions_for_value_in_critic_loss") == k
            assert q(f"{agent}.num_actions_for_value_in_actor_loss") == k
            assert ref_name(q(f"{agent}.fbc_filter_func")) == filter_name
    assert (q("exp_filter.beta"), q("exp_filter.clip_weights_high")) == (1.0, 100)


def bindings(training):
    """The tiny agent's gin bindings with ``training``'s config, one "name = value" line each."""
    gin.clear_config()
    parse("tiny_agent", training)
    return {line for line in gin.config_str().splitlines() if " = " in line}


def test_exp_rl_gentle_is_exp_rl_with_beta_and_detached_critic():
    """exp_rl_gentle.gin = exp_rl.gin + exp_filter.beta 0.1 + the critic detached from the encoders."""
    metamon, gentle = bindings("exp_rl"), bindings("exp_rl_gentle")
    assert metamon - gentle == {"exp_filter.beta = 1.0"}
    assert gentle - metamon == {
        "exp_filter.beta = 0.1",
        "Agent.detach_critic_from_encoders = True",
        "MultiTaskAgent.detach_critic_from_encoders = True",
    }


ONESTEP = {"Agent.advantage_policy = 'initial'", "MultiTaskAgent.advantage_policy = 'initial'"}
MAX = {"Agent.advantage_ensemble = 'max'", "MultiTaskAgent.advantage_ensemble = 'max'"}
QUORUM = {"Agent.advantage_ensemble = 2", "MultiTaskAgent.advantage_ensemble = 2"}


@pytest.mark.parametrize("stage,metamon_name,changed,added", [
    ("critic_first", "exp_rl", {"exp_filter.beta": ("1.0", "0.1")}, set()),
    ("critic_first_binary", "binary_rl", {}, set()),
    ("critic_first_onestep", "binary_rl", {}, ONESTEP),
    ("critic_first_onestep_max", "binary_rl", {}, ONESTEP | MAX),
    ("critic_first_onestep_quorum", "binary_rl", {}, ONESTEP | QUORUM),
])
def test_critic_first_recipe_is_metamons_config_with_a_separate_critic(stage, metamon_name, changed, added):
    """The stages of the critic-first recipe are metamon's exp_rl.gin / binary_rl.gin with the
    critic on its own encoders and its loss weighted 1 instead of 10 (stage 1 also: beta 0.1; the
    one-step stage 2 also: the filter's V under the starting policy; its max and quorum variants
    also: the filter reads the largest / second largest of the critics' advantages)."""
    metamon, ours = bindings(metamon_name), bindings(stage)
    changed = {**changed, "MetamonAMAGOExperiment.critic_loss_weight": ("10.0", "1.0")}
    assert metamon - ours == {f"{name} = {old}" for name, (old, _) in changed.items()}
    assert ours - metamon == {f"{name} = {new}" for name, (_, new) in changed.items()} | added | {
        "Agent.separate_critic_encoder = True",
        "MultiTaskAgent.separate_critic_encoder = True",
    }


# ---------------------------------------------------------------------------------------------
# Building agents
# ---------------------------------------------------------------------------------------------
def mon(name, hp=1.0):
    return UniversalPokemon(
        name=name, hp_pct=hp, types="normal notype", item="leftovers", ability="thickfat", lvl=100,
        status="nostatus", effect="noeffect",
        moves=[UniversalMove(m, "normal", "physical", 80, 1.0, 0, 16, 16) for m in ("tackle", "bodyslam")],
        atk_boost=0, spa_boost=0, def_boost=0, spd_boost=0, spe_boost=0, accuracy_boost=0,
        evasion_boost=0, base_atk=110, base_spa=65, base_def=65, base_spd=110, base_spe=30,
        base_hp=160, tera_type="notype", base_species=name,
    )


def battle_states(n):
    return [
        UniversalState(
            format=FMT, player_active_pokemon=mon("snorlax", 1.0 - 0.05 * t),
            opponent_active_pokemon=mon("blissey", 1.0 - 0.1 * t), available_switches=[mon("tauros")],
            player_prev_move=UniversalMove.blank_move(), opponent_prev_move=UniversalMove.blank_move(),
            opponents_remaining=6, player_conditions="noconditions", opponent_conditions="noconditions",
            weather="noweather", battle_field="nofield", forced_switch=False, battle_won=t == n - 1,
            battle_lost=False, can_tera=False, opponent_teampreview=["blissey"] * 6,
        )
        for t in range(n)
    ]


@pytest.fixture(scope="module")
def replay_batch(tmp_path_factory):
    """A padded batch of two battles (6 and 4 states) from MetamonAMAGODataset."""
    root = tmp_path_factory.mktemp("replays")
    for i, (n, actions) in enumerate(((6, [0, 1, -1, 4, 0, -1]), (4, [1, 0, 4, -1]))):
        name = trajectory_filename(f"{FMT}-{i}", "alice", "bob", True, date=datetime(2025, 10, 27))
        write_trajectory(root, FMT, name, [s.to_dict() for s in battle_states(n)], actions)
    obs_space = TokenizedObservationSpace(TeamPreviewObservationSpace(), get_tokenizer())
    replays = ParsedReplayDataset(obs_space, DefaultActionSpace(), DefaultShapedReward(), dset_root=root, formats=[FMT])
    dset = MetamonAMAGODataset(replays, DefaultActionSpace())
    batch = RLData_pad_collate([dset.item_to_rldata(*replays[i]) for i in range(2)])
    return batch, obs_gym_space(obs_space, DefaultActionSpace())


def build(model, training, obs_space, tmp_path):
    """The agent `train` builds: the two gins, the dataset's tokenizer bound on the turn encoder."""
    configure_agent([CONFIGS / "models" / f"{model}.gin", CONFIGS / "training" / f"{training}.gin"],
                    tokenizer=DEFAULT_TOKENIZER)
    experiment = MetamonAMAGOExperiment(
        run_name="test", ckpt_base_dir=str(tmp_path), dataset=None, obs_space=obs_space,
        action_space=spaces.Discrete(13),
    )
    torch.manual_seed(0)
    return experiment.build_agent()


@pytest.mark.parametrize("training,gammas", [("il", 1), ("binary_rl", 7)])
def test_tiny_agent_trains_on_replays(replay_batch, tmp_path, training, gammas):
    batch, obs_space = replay_batch
    agent = build("tiny_agent", training, obs_space, tmp_path)
    assert isinstance(agent.tstep_encoder, ScratchTstepEncoder) and agent.tstep_encoder.emb_dim == 64
    assert isinstance(agent.traj_encoder, TformerTrajEncoder) and agent.emb_dim == 64
    assert isinstance(agent.actor, MetamonMaskedActor) and agent.actor.strict_mask
    assert len(agent.gammas) == gammas and len(agent.critics) == 4
    out = agent(batch, log_step=True)
    critic_loss, actor_loss = out.critic, out.actor
    assert actor_loss.shape == (2, 5, gammas, 1) and torch.isfinite(actor_loss).all()
    if training == "il":
        assert critic_loss is None
    else:
        assert critic_loss.shape == (2, 5, 4, gammas, 1) and torch.isfinite(critic_loss).all()
    actor_loss.mean().backward()
    assert agent.tstep_encoder.token_emb.weight.grad is not None

    # rollout: one timestep per battle, never an illegal action (strict masking)
    agent.eval()
    obs = {k: v[:, :1] for k, v in batch.obs.items()}
    actions, _ = agent.get_actions(obs, batch.rl2s[:, :1], batch.time_idxs[:, :1])
    assert actions.shape == (2, 1, 1) and actions.dtype == torch.uint8
    legal = ~batch.obs["illegal_actions"][:, 0]
    assert all(bool(legal[b, int(actions[b, 0, 0])]) for b in range(2))


@pytest.mark.parametrize("model,critic,bins,d_s", [("small_agent", "NCritics", None, 512),
                                                     ("small_multitaskagent", "NCriticsTwoHot", 64, 512),
                                                     ("small_agent_400", "NCritics", None, 400)])
def test_small_agents_build_and_run(replay_batch, tmp_path, model, critic, bins, d_s):
    batch, obs_space = replay_batch
    agent = build(model, "binary_rl", obs_space, tmp_path)
    assert type(agent.critics).__name__ == critic
    assert agent.tstep_encoder.emb_dim == 400 and agent.emb_dim == d_s
    assert agent.actor.base.in_layer.out_features == 300
    assert len(agent.critics) == 4
    if bins:
        assert agent.critics.output_bins == bins
    out = agent(batch, log_step=False)
    critic_loss, actor_loss = out.critic, out.actor
    assert actor_loss.shape == (2, 5, 7, 1) and torch.isfinite(actor_loss).all()
    assert torch.isfinite(critic_loss).all()
