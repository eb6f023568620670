"""metamon's gin configs: same names, same values, same networks.

The reference (``metamon_models.md``) gives the model-gin values (§5), the training-gin values
(§7), the state-dict key counts (§1) and the total state-dict elements measured on metamon's own
code (§11.1). This file checks, without any checkpoint:

* every training gin binds §7's values (``TRAINING``), ``base_il`` equals ``il``;
* every metamon model gin binds §5's values (``MODELS``);
* :func:`state_dict_size` (keys and elements of an agent computed from the §5 values with the
  layouts of §2–§4 and AMAGO's Appendix A) reproduces every §11.1 total, so the transcription of
  the table is right;
* building each registry configuration (model gin x train gin, with the registry's spaces) on the
  ``meta`` device gives the reference's key count and element total (or, for the configurations
  §11.1 does not list, :func:`state_dict_size`'s). The meta device allocates nothing, so the
  200 M-parameter models cost no memory.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Optional

import gin
import gin.config
import pytest
import torch

from metamon.amago.agent import leaky_relu_filter
from metamon.amago.build import build_agent
from metamon.interface import (
    DefaultActionSpace,
    DefaultObservationSpace,
    MinimalActionSpace,
    OpponentMoveObservationSpace,
    TeamPreviewObservationSpace,
    TokenizedObservationSpace,
)
from metamon.rl import MODEL_CONFIG_DIR, TRAINING_CONFIG_DIR
from metamon.rl.agent_config import configure_agent
from metamon.rl.dataset import obs_gym_space
from metamon.tokenizer import get_tokenizer

# --------------------------------------------------------------------------------- §5: model gins
# enc: (class, extra_emb_dim, d_model, n_layers, n_heads, scratch or latent tokens, numerical_tokens,
#       max_tokens_per_turn or None, token_mask_aug, dropout)
# traj: ("Tfm", d_model, n_heads, d_ff, n_layers, sigma_reparam, attention) | ("GRU", d_hidden, n_layers, d_output)
# actor: ("M", d_hidden) masked MLP (n_layers 2) | ("R", feature_dim, residual_ff_dim, residual_blocks)
# critic: (class, d_hidden, n_layers, bins, min_return, max_return); C = num_critics
TF, PC = "MetamonTstepEncoder", "MetamonPerceiverTstepEncoder"
NC, TH = "NCritics", "NCriticsTwoHot"
FLASH_96 = ("FlashAttention", {"window_size": (96, 0)})
SINK = ("ClippedSlidingSinkAttention", {"window_size": 96, "logit_clip": 50, "sink_size": 5})


@dataclass(frozen=True)
class Model:
    agent: str
    max_seq_len: int
    enc: tuple
    traj: tuple
    actor: tuple
    critic: tuple
    C: int


MODELS = {
    "small_agent": Model("Agent", 200, (TF, 18, 100, 3, 5, 4, 6, None, False, .05),
                         ("Tfm", 512, 8, 2048, 3, True, None), ("M", 300), (NC, 300, 2, None, None, None), 4),
    "small_multitaskagent": Model("MultiTaskAgent", 200, (TF, 18, 100, 3, 5, 4, 6, None, False, .05),
                                  ("Tfm", 512, 8, 2048, 3, True, None), ("M", 300), (TH, 300, 2, 64, -1100, 1100), 4),
    "small_rnn": Model("Agent", 64, (TF, 12, 64, 2, 4, 3, 3, None, False, .05),
                       ("GRU", 400, 2, 300), ("M", 256), (NC, 256, 2, None, None, None), 4),
    "medium_agent": Model("Agent", 200, (TF, 18, 100, 3, 5, 6, 6, None, False, .05),
                          ("Tfm", 768, 8, 3072, 6, True, None), ("M", 400), (NC, 400, 2, None, None, None), 4),
    "medium_multitaskagent": Model("MultiTaskAgent", 200, (TF, 18, 100, 3, 5, 6, 6, None, False, .05),
                                   ("Tfm", 768, 8, 3072, 6, True, None), ("M", 400), (TH, 512, 2, 96, -1100, 1100), 6),
    "large_agent": Model("Agent", 128, (TF, 18, 160, 5, 8, 11, 6, None, True, .05),
                         ("Tfm", 1280, 20, 5120, 9, True, None), ("M", 512), (NC, 512, 2, None, None, None), 4),
    "synthetic_agent": Model("Agent", 128, (TF, 18, 160, 5, 8, 11, 6, None, True, .05),
                             ("Tfm", 1280, 20, 5120, 9, True, None), ("M", 512), (NC, 512, 2, None, None, None), 6),
    "synthetic_multitaskagent": Model("MultiTaskAgent", 128, (TF, 18, 160, 5, 8, 11, 6, None, True, .05),
                                      ("Tfm", 1280, 20, 5120, 9, True, None), ("M", 512),
                                      (TH, 512, 2, 96, -1100, 1100), 6),
    "minikazam": Model("Agent", 64, (PC, 12, 64, 3, 4, 5, 3, 64, False, .05),
                       ("GRU", 400, 2, 300), ("M", 256), (NC, 256, 2, None, None, None), 4),
    # footnote a: alakazam.gin binds MetamonMaskedActor.* but uses the residual actor -> its defaults
    "alakazam": Model("MultiTaskAgent", 200, (TF, 18, 108, 4, 6, 6, 6, None, False, .05),
                      ("Tfm", 768, 12, 3072, 6, False, SINK), ("R", 256, 512, 2), (TH, 512, 2, 96, -100, 2100), 6),
    "alakazam2": Model("MultiTaskAgent", 200, (PC, 18, 108, 5, 6, 8, 6, 128, False, .05),
                       ("Tfm", 768, 12, 3072, 6, True, FLASH_96), ("R", 400, 512, 2), (TH, 512, 2, 96, -100, 2100), 6),
    "alakazam4": Model("MultiTaskAgent", 128, (PC, 18, 108, 8, 6, 8, 6, 128, False, .05),
                       ("Tfm", 768, 12, 3072, 8, True, FLASH_96), ("R", 450, 512, 2), (TH, 512, 2, 96, -100, 2100), 6),
    "superkazam": Model("MultiTaskAgent", 128, (PC, 18, 168, 10, 8, 8, 6, 128, True, .08),
                        ("Tfm", 900, 12, 3600, 10, True, FLASH_96), ("R", 500, 800, 3),
                        (TH, 700, 3, 96, -100, 2100), 6),
}

# ------------------------------------------------------------------------------ §7: training gins
# (use_multigamma, fake_filter, reward_multiplier, tau, online Agent/MTA, offline,
#  value actions critic/actor Agent, critic/actor MTA, filter, filter bindings,
#  learning_rate, grad_clip, critic_loss_weight, lr_warmup_steps, l2_coeff); None = not bound
EXP = ("exp_filter", {"beta": 1.0, "clip_weights_high": 100})
BIN = ("binary_filter", {})


def leaky(beta: float, tau: float) -> tuple:
    return ("leaky_relu_filter", {"beta": beta, "tau": tau, "neg_slope": .05, "clip_weights_low": 1e-3,
                                  "clip_weights_high": 15})


IL = (False, True, None, None, (0, 0), 1, None, None, None, 1.5e-4, 1.5, 10, 1000, 1e-4)
TRAINING = {
    "il": IL,
    "base_il": IL,
    "base_offline_rl": (None, None, 10, .004, (0, 0), 1, (2, 2), (2, 2), EXP, 1.5e-4, 1.5, 10, 1000, 1e-4),
    "exp_rl": (None, None, 10, .004, (0, 0), 1, (1, 1), (3, 3), EXP, 1.5e-4, 1.5, 10, 1000, 1e-4),
    "binary_rl": (None, None, 10, .004, (0, 0), 1, (1, 1), (3, 3), BIN, 1.5e-4, 1.5, 10, 1000, 1e-4),
    "binary_maxq_rl": (None, None, 10, .004, (.25, .25), 1, (1, 1), (3, 3), BIN, 1.5e-4, 1.5, 10, 1000, 1e-4),
    "alakazam": (None, None, 10, .004, (0, 0), 1, (1, 1), (4, 4), leaky(.5, 1e-2), 1.25e-4, 1.5, 12.5, 1250, 1e-4),
    "alakazam2": (None, None, 10, .008, (.1, .1), 1, (1, 1), (4, 4), leaky(.4, 1e-3), 1.25e-4, 1.5, 13.5, 1500, 1e-4),
    "alakazam3": (None, None, 10, .008, (.1, .2), 1, (1, 1), (4, 4), leaky(.4, 1e-3), 1.25e-4, 1.5, 13.5, 2000, 1e-4),
    "kakuna": (None, None, 10, .008, (.1, .25), 1, (1, 1), (5, 4), leaky(.3, 1e-3), 1e-4, 1.0, 12.5, 10000, 1e-4),
}
IL_GINS = ("il", "base_il")  # use_multigamma = False: G = 1; every other training gin: G = 7


# ------------------------------------------------------------------------ spaces of the registry
@dataclass(frozen=True)
class Spaces:
    observation: type
    action: type
    W: int
    N: int
    V: int
    A: int


PAPER = Spaces(DefaultObservationSpace, MinimalActionSpace, 87, 48, 1407, 9)  # §6.2, allreplays-v3
TEAM_PREVIEW = Spaces(TeamPreviewObservationSpace, DefaultActionSpace, 106, 55, 2541, 13)  # §6.3, v1
OPP_MOVE = Spaces(OpponentMoveObservationSpace, DefaultActionSpace, 106, 55, 2541, 13)

# (registry entry or file, model gin, train gin, spaces, keys §1, elements §11.1 or None)
CASES = [
    ("SmallIL", "small_agent", "il", PAPER, 168, 13_710_981),
    ("SmallIL (1.4.0)", "small_agent", "base_il", PAPER, 168, 13_710_981),
    ("SmallRL", "small_agent", "exp_rl", PAPER, 168, 13_938_567),
    ("SmallRL (1.4.0)", "small_agent", "base_offline_rl", PAPER, 168, 13_938_567),
    ("SmallRL_MaxQ", "small_agent", "binary_maxq_rl", PAPER, 168, 13_938_567),
    ("MediumIL", "medium_agent", "il", PAPER, 252, None),
    ("MediumRL", "medium_agent", "exp_rl", PAPER, 252, 50_557_507),
    ("LargeIL", "large_agent", "il", PAPER, 360, None),
    ("LargeRL", "large_agent", "exp_rl", PAPER, 360, 194_792_947),
    ("SyntheticRLV1", "synthetic_agent", "binary_rl", PAPER, 360, 200_498_029),
    ("SyntheticRLV2", "synthetic_multitaskagent", "binary_rl", PAPER, 360, 200_894_911),
    ("small_rnn.gin", "small_rnn", "binary_rl", PAPER, None, None),
    ("SmallRLGen9Beta", "small_multitaskagent", "exp_rl", TEAM_PREVIEW, 168, 14_127_107),
    ("Abra", "medium_multitaskagent", "binary_rl", TEAM_PREVIEW, 252, 57_608_879),
    ("Minikazam", "minikazam", "binary_rl", OPP_MOVE, 134, 4_761_813),
    ("Kadabra2", "alakazam2", "alakazam2", OPP_MOVE, 378, 60_551_947),
    ("Kadabra3", "alakazam2", "alakazam3", OPP_MOVE, 378, 60_551_947),
    ("Kadabra4", "alakazam4", "alakazam3", OPP_MOVE, 512, 75_988_431),
    ("Superkazam", "superkazam", "alakazam3", OPP_MOVE, 642, 142_832_563),
    ("Kakuna", "superkazam", "kakuna", OPP_MOVE, 642, 142_832_563),
    ("alakazam.gin", "alakazam", "alakazam", OPP_MOVE, 224, None),
]


def module_sizes(model: Model, V: int, N: int, A: int, G: int) -> dict[str, tuple[int, int]]:
    """{top-level module: (keys, elements)} of the agent's state dict, from the layouts in
    metamon_models.md §2–§4 and amago_core.md Appendix A."""
    cls, E, d, L, H, S, K, M = model.enc[:8]
    # rl2 embedding, word table (V+1 rows), text fuse, numeric fuse (K*d, N+E)
    elements = E * (A + 1) + E + (V + 1) * d + d * d + d + K * d * (N + E) + K * d
    if cls == TF:  # L pre-LN layers (MHA, FF 4d, 2 norms) + final norm
        tstep = (9 + 12 * L, elements + L * (12 * d * d + 13 * d) + 2 * d)
    else:  # learned positions (M, d), latents (S, d), L x (cross block + self block)
        tstep = (9 + 26 * L, elements + M * d + S * d + L * (24 * d * d + 28 * d))
    tstep_dim = S * d
    if model.traj[0] == "Tfm":
        _, D, Ht, ff, Lt, sigma, _ = model.traj
        layer = Ht + 4 * D * D + D + 2 * ff * D + ff + D + 6 * D + 2 * ff
        if sigma:  # gamma, u, v of qkv, out, ff1, ff2
            layer += 4 + 8 * D + 2 * ff
        traj = (4 + Lt * (28 if sigma else 16), tstep_dim * D + D + Lt * layer + 2 * D)
        state_dim = D
    else:
        _, h, Lg, out = model.traj
        traj = (4 * Lg + 4,
                3 * h * tstep_dim + 3 * h * h + 6 * h + (Lg - 1) * (6 * h * h + 6 * h) + h * out + 3 * out)
        state_dim = out
    critic, h, n, bins = model.critic[:4]
    d_in, d_out = (state_dim, G * A) if critic == NC else (state_dim + 1 + A, bins)
    C = model.C
    critics = (2 * n + 2, C * (d_in * h + h) + (n - 1) * C * (h * h + h) + C * (h * d_out + d_out))
    if model.actor[0] == "M":
        h = model.actor[1]
        actor = (6, state_dim * h + h + h * h + h + h * G * A + G * A)
    else:
        _, f, r, b = model.actor
        block = f * r + r + 2 * r + r * f + f + 2 * f
        actor = (6 + 8 * b, state_dim * f + f + f * f + f + b * block + f * G * A + G * A)
    return {"tstep_encoder": tstep, "traj_encoder": traj, "critics": critics, "target_critics": critics,
            "maximized_critics": critics, "actor": actor, "target_actor": actor, "popart": (5, 5 * G)}


def state_dict_size(model: Model, V: int, N: int, A: int, G: int) -> tuple[int, int]:
    """(keys, elements) of the whole state dict (:func:`module_sizes` summed)."""
    sizes = module_sizes(model, V, N, A, G).values()
    return sum(k for k, _ in sizes), sum(e for _, e in sizes)


def gammas_of(training: str) -> int:
    return 1 if training in IL_GINS else 7


def parse(model: str, training: str) -> None:
    configure_agent([MODEL_CONFIG_DIR / f"{model}.gin", TRAINING_CONFIG_DIR / f"{training}.gin"])


def q(name: str):
    return gin.query_parameter(name)


def bound(name: str) -> bool:
    try:
        gin.query_parameter(name)
    except ValueError:
        return False
    return True


def ref_name(value) -> str:
    return value.selector.split(".")[-1]


# ------------------------------------------------------------------------------------- the tests
def test_every_metamon_config_is_listed():
    shipped = {p.stem for p in MODEL_CONFIG_DIR.glob("*.gin")}
    assert set(MODELS) <= shipped
    assert set(TRAINING) <= {p.stem for p in TRAINING_CONFIG_DIR.glob("*.gin")}
    assert {case[1] for case in CASES} == set(MODELS)
    assert {case[2] for case in CASES} == set(TRAINING)


@pytest.mark.parametrize("training", sorted(TRAINING))
def test_training_gin_values(training):
    parse("small_multitaskagent", training)
    (multigamma, fake, rmult, tau, online, offline, actions_agent, actions_mta, filt, lr, clip, clw,
     warmup, l2) = TRAINING[training]
    for i, agent in enumerate(("Agent", "MultiTaskAgent")):
        for param, value in (("use_multigamma", multigamma), ("fake_filter", fake),
                             ("reward_multiplier", rmult), ("tau", tau)):
            if value is None:
                assert not bound(f"{agent}.{param}"), f"{training}.gin binds {agent}.{param}"
            else:
                assert q(f"{agent}.{param}") == value
        assert q(f"{agent}.online_coeff") == online[i]
        assert q(f"{agent}.offline_coeff") == offline
        actions = (actions_agent, actions_mta)[i]
        if actions is None:
            assert not bound(f"{agent}.num_actions_for_value_in_critic_loss")
            assert not bound(f"{agent}.fbc_filter_func")
        else:
            assert (q(f"{agent}.num_actions_for_value_in_critic_loss"),
                    q(f"{agent}.num_actions_for_value_in_actor_loss")) == actions
            assert ref_name(q(f"{agent}.fbc_filter_func")) == filt[0]
    if filt is not None:
        for param, value in filt[1].items():
            assert q(f"{filt[0]}.{param}") == value
    assert (q("MetamonAMAGOExperiment.learning_rate"), q("MetamonAMAGOExperiment.grad_clip"),
            q("MetamonAMAGOExperiment.critic_loss_weight"), q("MetamonAMAGOExperiment.lr_warmup_steps"),
            q("MetamonAMAGOExperiment.l2_coeff")) == (lr, clip, clw, warmup, l2)


def test_alakazam_filter_weights_by_hand():
    """alakazam.gin's leaky-ReLU filter (beta .5, tau 1e-2, slope .05, weights in [1e-3, 15]):
    w = clamp(0.011 + leaky_relu((A - 0.01) / 0.5, 0.05), 1e-3, 15), so w(0) = 0.01 (AMAGO 3.1.1:
    no 1[A > 0] term)."""
    parse("small_agent", "alakazam")
    adv = torch.tensor([0.0, 1.01, -0.05, -10.0, 100.0]).view(1, 5, 1, 1)
    weights = leaky_relu_filter(adv).flatten()  # gin supplies the bound parameters
    # 0.011 + (-0.001); 0.011 + 2; 0.011 + 0.05 * -0.12; clipped low; clipped high
    assert torch.allclose(weights, torch.tensor([0.01, 2.011, 0.005, 1e-3, 15.0]), atol=1e-6)


def _bindings(path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def test_base_il_is_il():
    """metamon 1.4.0's base_il.gin is 1.5.1's il.gin under its old name."""
    assert _bindings(TRAINING_CONFIG_DIR / "base_il.gin") == _bindings(TRAINING_CONFIG_DIR / "il.gin")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_gin_values(name):
    parse(name, "binary_rl")
    m = MODELS[name]
    assert ref_name(q("MetamonAMAGOExperiment.agent_type")) == m.agent
    assert q("MetamonAMAGOExperiment.max_seq_len") == m.max_seq_len
    assert q(f"{m.agent}.popart") is True and q(f"{m.agent}.pass_obs_keys_to_actor") == ["illegal_actions"]
    assert q(f"{m.agent}.num_critics") == m.C

    cls, E, d, L, H, tokens, K, max_tokens, aug, dropout = m.enc
    assert ref_name(q("MetamonAMAGOExperiment.tstep_encoder_type")) == cls
    tokens_name = "scratch_tokens" if cls == TF else "latent_tokens"
    expected = {"extra_emb_dim": E, "d_model": d, "n_layers": L, "n_heads": H, tokens_name: tokens,
                "numerical_tokens": K, "token_mask_aug": aug, "dropout": dropout}
    if max_tokens is not None:
        expected["max_tokens_per_turn"] = max_tokens
    assert {k: q(f"{cls}.{k}") for k in expected} == expected

    if m.traj[0] == "Tfm":
        _, D, Ht, ff, Lt, sigma, attention = m.traj
        assert ref_name(q("MetamonAMAGOExperiment.traj_encoder_type")) == "TformerTrajEncoder"
        names = ("d_model", "n_heads", "d_ff", "n_layers", "sigma_reparam", "normformer_norms", "norm",
                 "head_scaling", "activation")
        assert tuple(q(f"TformerTrajEncoder.{k}") for k in names) == (
            D, Ht, ff, Lt, sigma, True, "layer", True, "leaky_relu")
        if attention is None:
            assert not bound("TformerTrajEncoder.attention_type")
        else:
            assert ref_name(q("TformerTrajEncoder.attention_type")) == attention[0]
            assert {k: q(f"{attention[0]}.{k}") for k in attention[1]} == attention[1]
    else:
        assert ref_name(q("MetamonAMAGOExperiment.traj_encoder_type")) == "GRUTrajEncoder"
        assert tuple(q(f"GRUTrajEncoder.{k}") for k in ("d_hidden", "n_layers", "d_output", "norm")) == (
            *m.traj[1:], "layer")

    if m.actor[0] == "M":
        assert ref_name(q(f"{m.agent}.actor_type")) == "MetamonMaskedActor"
        assert (q("MetamonMaskedActor.n_layers"), q("MetamonMaskedActor.d_hidden"),
                q("MetamonMaskedActor.activation")) == (2, m.actor[1], "leaky_relu")
    else:
        assert ref_name(q(f"{m.agent}.actor_type")) == "MetamonMaskedResidualActor"
        names = ("feature_dim", "residual_ff_dim", "residual_blocks")
        if name == "alakazam":  # footnote a: nothing bound on the residual actor, its defaults apply
            assert not any(bound(f"MetamonMaskedResidualActor.{k}") for k in names)
        else:
            assert tuple(q(f"MetamonMaskedResidualActor.{k}") for k in names) == m.actor[1:]

    critic, h, n, bins, low, high = m.critic
    assert ref_name(q(f"{m.agent}.critic_type")) == critic
    assert (q(f"{critic}.d_hidden"), q(f"{critic}.n_layers"), q(f"{critic}.activation")) == (h, n, "leaky_relu")
    if critic == TH:
        assert (q(f"{TH}.output_bins"), q(f"{TH}.min_return"), q(f"{TH}.max_return"),
                q(f"{TH}.use_symlog")) == (bins, low, high, False)


REFERENCE_TOTALS = [case for case in CASES if case[5] is not None]


@pytest.mark.parametrize("label,model,training,spaces,keys,elements", REFERENCE_TOTALS,
                         ids=[c[0] for c in REFERENCE_TOTALS])
def test_size_formula_matches_reference(label, model, training, spaces, keys, elements):
    """The §5 table above, through state_dict_size, gives every total metamon's code measured."""
    assert state_dict_size(MODELS[model], spaces.V, spaces.N, spaces.A, gammas_of(training)) == (keys, elements)


@pytest.fixture(scope="module")
def vocab_files(tmp_path_factory) -> dict[int, str]:
    """Vocabulary files of the registry's sizes (allreplays-v3: 1407 words; DefaultObservationSpace-v1: 2541),
    in metamon's format (a flat JSON object word -> id)."""
    root = tmp_path_factory.mktemp("vocab")
    files = {}
    for size in (PAPER.V, OPP_MOVE.V):
        path = root / f"vocab{size}.json"
        path.write_text(json.dumps({f"word{i}": i for i in range(size)}))
        files[size] = str(path)
    return files


def build_on_meta(model: str, training: str, spaces: Spaces, vocab: str):
    structure = configure_agent(
        [MODEL_CONFIG_DIR / f"{model}.gin", TRAINING_CONFIG_DIR / f"{training}.gin"], tokenizer=vocab
    )
    observation = TokenizedObservationSpace(spaces.observation(), get_tokenizer(vocab))
    action = spaces.action()
    obs_space = obs_gym_space(observation, action)
    assert (obs_space["text_tokens"].shape, obs_space["numbers"].shape) == ((spaces.W,), (spaces.N,))
    assert action.gym_space.n == spaces.A
    with torch.device("meta"):
        return build_agent(obs_space, action.gym_space, **structure)


@pytest.mark.parametrize("label,model,training,spaces,keys,elements", CASES, ids=[c[0] for c in CASES])
def test_registry_configuration_state_dict(vocab_files, label, model, training, spaces, keys, elements):
    """Keys and elements of the agent a registry entry builds = the reference's (§1, §11.1); for
    configurations the reference does not measure, = state_dict_size's."""
    agent = build_on_meta(model, training, spaces, vocab_files[spaces.V])
    state = agent.state_dict()
    G = gammas_of(training)
    expected = state_dict_size(MODELS[model], spaces.V, spaces.N, spaces.A, G)
    if keys is not None:
        assert expected[0] == keys
    if elements is not None:
        assert expected[1] == elements
    measured: dict[str, tuple[int, int]] = {}
    for key, tensor in state.items():
        keys_, elements_ = measured.get(key.split(".")[0], (0, 0))
        measured[key.split(".")[0]] = (keys_ + 1, elements_ + tensor.numel())
    wanted = module_sizes(MODELS[model], spaces.V, spaces.N, spaces.A, G)
    differ = {name: (measured.get(name), size) for name, size in wanted.items() if measured.get(name) != size}
    assert not differ and set(measured) == set(wanted), f"{label}: (measured, expected) per module {differ}"
    assert (len(state), sum(t.numel() for t in state.values())) == expected
    assert tuple(state["popart.mu"].shape) == (G, 1)
    assert agent.tstep_encoder.emb_dim == MODELS[model].enc[2] * MODELS[model].enc[5]


# ------------------------------------------------------------------- every shipped gin parses
ALL_MODELS = sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.gin"))
ALL_TRAINING = sorted(p.stem for p in TRAINING_CONFIG_DIR.glob("*.gin"))


def _accepted_parameters(fn) -> Optional[set]:
    """Parameter names ``fn`` (a class or function) accepts, following ``**kwargs`` up a class's MRO;
    None when anything goes."""
    if inspect.isclass(fn):
        names: set = set()
        for cls in fn.__mro__:
            init = cls.__dict__.get("__init__")
            if init is None:
                continue
            params = inspect.signature(init).parameters.values()
            names |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
            if not any(p.kind == p.VAR_KEYWORD for p in params):
                return names
        return names
    params = inspect.signature(fn).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


@pytest.mark.parametrize("training", ALL_TRAINING)
@pytest.mark.parametrize("model", ALL_MODELS)
def test_every_shipped_gin_pair_parses_and_names_real_parameters(model, training):
    """Each model gin with each training gin parses, and every binding names a parameter its
    configurable takes (gin itself cannot check that through ``**kwargs``)."""
    parse(model, training)
    registry = gin.config._REGISTRY  # gin has no public iterator over the parsed bindings
    for (_, selector), params in gin.config._CONFIG.items():
        configurable = registry.get_match(selector)
        assert configurable is not None, f"{model} + {training}: {selector} is not a configurable"
        accepted = _accepted_parameters(configurable.wrapped)
        if accepted is None:
            continue
        unknown = set(params) - accepted
        assert not unknown, f"{model} + {training}: {selector} has no parameter {sorted(unknown)}"


def test_every_gin_file_has_a_header():
    for path in sorted(MODEL_CONFIG_DIR.glob("*.gin")) + sorted(TRAINING_CONFIG_DIR.glob("*.gin")):
        first = path.read_text().splitlines()[0]
        assert first.startswith("#"), f"{path.name} has no header comment"
    for path in MODEL_CONFIG_DIR.glob("*.gin"):
        assert "emb_dim" in path.read_text(), f"{path.name}: the header gives no emb_dim"
