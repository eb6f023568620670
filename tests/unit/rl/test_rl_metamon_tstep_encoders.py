"""metamon's turn encoders: state-dict keys and shapes of the reference tables, the golden
outputs of the reference (metamon_models.md §11.2), padding, ids, augmentation, errors."""

import json
import math
import zlib

import gin
import numpy as np
import pytest
import torch
from gymnasium import spaces

from metamon.rl import MetamonRLError
from metamon.rl.tstep_encoders import MetamonPerceiverTstepEncoder, MetamonTstepEncoder, sinusoidal_positions
from metamon.rl.turn_inputs import TOKEN_MASK_MAX_RATE, TOKEN_MASK_SKIP_PROB


def vocabulary(tmp_path, size):
    """A vocabulary file of ``size`` words (only its length matters to the encoders)."""
    path = tmp_path / f"vocab{size}.json"
    path.write_text(json.dumps({f"w{i}": i for i in range(size)}))
    return str(path)


def obs_spaces(words, numbers, actions):
    obs = spaces.Dict({
        "text_tokens": spaces.Box(-1, 10_000, (words,), np.int32),
        "numbers": spaces.Box(-10, 10, (numbers,), np.float32),
        "illegal_actions": spaces.Box(0, 1, (actions,), bool),
    })
    return obs, spaces.Box(-np.inf, np.inf, (actions + 1,), np.float32)


# ---------------------------------------------------------------------------- golden values

# (class, W, N, V, A, kwargs, emb_dim, out[0,:4], out[1,:4], |out[1]|, out[1, d:d+2])
GOLDEN = {
    "Tf small_agent": (
        MetamonTstepEncoder, 87, 48, 1407, 9, {}, 400,
        [0.04311, -0.53905, -1.32603, -1.40683], [0.06523, -0.54067, -1.25479, -1.44422], 20.0912,
        [0.37623, -0.35757],
    ),
    "Pc alakazam4": (
        MetamonPerceiverTstepEncoder, 106, 55, 2541, 13,
        dict(extra_emb_dim=18, d_model=108, n_layers=8, n_heads=6, latent_tokens=8, numerical_tokens=6,
             max_tokens_per_turn=128), 864,
        [-1.30589, -5.75540, 0.04939, -3.70719], [-2.25521, -6.20300, -0.01064, -4.65160], 107.956,
        [-1.68342, -4.33305],
    ),
    "Pc minikazam": (
        MetamonPerceiverTstepEncoder, 106, 55, 2541, 13,
        dict(extra_emb_dim=12, d_model=64, n_layers=3, n_heads=4, latent_tokens=5, numerical_tokens=3,
             max_tokens_per_turn=64), 320,
        [-1.09670, 1.75681, -2.90404, 3.45416], [-1.44842, 1.68025, -2.72541, 3.17433], 44.991,
        [-1.51791, 2.33629],
    ),
}


def golden_fill(encoder):
    """Every tensor of the encoder's own state dict from a crc32(key)-seeded randn (§11.2)."""
    values = {}
    for key, tensor in encoder.state_dict().items():
        generator = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        r = torch.randn(tuple(tensor.shape), generator=generator)
        if tensor.dim() >= 2:
            values[key] = r / math.sqrt(tensor.shape[-1])
        elif key.endswith(".weight"):
            values[key] = 1 + 0.1 * r
        else:
            values[key] = 0.1 * r
    encoder.load_state_dict(values, strict=True)


def golden_inputs(W, N, V, A):
    """Batch 1, L = 2: ids ((37i + 11l) mod (V+1)) - 1, numbers 0.1 cos(j + l), rl2s 0 then
    reward 0.5 and previous action 2."""
    i, j, t = torch.arange(W), torch.arange(N), torch.arange(2)[:, None]
    tokens = ((37 * i + 11 * t) % (V + 1)) - 1
    numbers = (0.1 * torch.cos((j + t).double())).float()
    rl2s = torch.zeros(2, A + 1)
    rl2s[1, 0], rl2s[1, 1 + 2] = 0.5, 1.0
    return {"text_tokens": tokens[None], "numbers": numbers[None]}, rl2s[None]


@pytest.mark.parametrize("row", sorted(GOLDEN))
def test_golden_values(row, tmp_path):
    cls, W, N, V, A, kwargs, emb_dim, out0, out1, norm1, out1_d = GOLDEN[row]
    encoder = cls(*obs_spaces(W, N, A), tokenizer=vocabulary(tmp_path, V), **kwargs).eval()
    assert encoder.emb_dim == emb_dim and encoder.vocab_size == V
    golden_fill(encoder)
    obs, rl2s = golden_inputs(W, N, V, A)
    assert obs["text_tokens"][0, 0, 0] == -1  # word 0 of turn 0 is the unknown word
    with torch.no_grad():
        out = encoder(obs, rl2s)[0]
    assert out.shape == (2, emb_dim)
    d = encoder.d_model
    tol = dict(atol=1e-4, rtol=0)
    torch.testing.assert_close(out[0, :4], torch.tensor(out0), **tol)
    torch.testing.assert_close(out[1, :4], torch.tensor(out1), **tol)
    torch.testing.assert_close(out[1, d:d + 2], torch.tensor(out1_d), **tol)
    assert abs(out[1].norm().item() - norm1) < 1e-3 * max(1.0, norm1 / 10)  # given to 5-6 digits


# ------------------------------------------------------------------------------ state dicts


def transformer_keys(n_layers, d, V, A, E, K, N):
    keys = {
        "extra_emb.weight": (E, A + 1), "extra_emb.bias": (E,),
        "turn_embedding.token_embedding.text_emb.weight": (V + 1, d),
        "turn_embedding.tformer_embedding.emb_transformer.norm.weight": (d,),
        "turn_embedding.tformer_embedding.emb_transformer.norm.bias": (d,),
        "turn_embedding.multimodal_fuse.text_emb.weight": (d, d),
        "turn_embedding.multimodal_fuse.text_emb.bias": (d,),
        "turn_embedding.multimodal_fuse.num_emb.weight": (K * d, N + E),
        "turn_embedding.multimodal_fuse.num_emb.bias": (K * d,),
    }
    for i in range(n_layers):
        p = f"turn_embedding.tformer_embedding.emb_transformer.layers.{i}."
        keys.update({
            p + "self_attn.in_proj_weight": (3 * d, d), p + "self_attn.in_proj_bias": (3 * d,),
            p + "self_attn.out_proj.weight": (d, d), p + "self_attn.out_proj.bias": (d,),
            p + "linear1.weight": (4 * d, d), p + "linear1.bias": (4 * d,),
            p + "linear2.weight": (d, 4 * d), p + "linear2.bias": (d,),
            p + "norm1.weight": (d,), p + "norm1.bias": (d,), p + "norm2.weight": (d,), p + "norm2.bias": (d,),
        })
    return keys


def perceiver_keys(n_layers, d, V, A, E, K, N, Q, M):
    keys = {k: v for k, v in transformer_keys(0, d, V, A, E, K, N).items() if "tformer_embedding" not in k}
    keys["turn_embedding.learned_pos.pos_emb.weight"] = (M, d)
    keys["turn_embedding.perceiver.latents"] = (Q, d)

    def attention_and_ff(p):
        return {
            p + "attn.in_proj_weight": (3 * d, d), p + "attn.in_proj_bias": (3 * d,),
            p + "attn.out_proj.weight": (d, d), p + "attn.out_proj.bias": (d,),
            p + "ff.0.weight": (4 * d, d), p + "ff.0.bias": (4 * d,),
            p + "ff.2.weight": (d, 4 * d), p + "ff.2.bias": (d,),
        }

    for i in range(n_layers):
        cross, self_ = f"turn_embedding.perceiver.cross_blocks.{i}.", f"turn_embedding.perceiver.self_blocks.{i}."
        keys.update(attention_and_ff(cross))
        keys.update({cross + f"{n}.{w}": (d,) for n in ("norm_q", "norm_kv", "norm_ff") for w in ("weight", "bias")})
        keys.update(attention_and_ff(self_))
        keys.update({self_ + f"{n}.{w}": (d,) for n in ("norm_attn", "norm_ff") for w in ("weight", "bias")})
    return keys


def shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_transformer_state_dict_is_metamons(tmp_path):
    encoder = MetamonTstepEncoder(*obs_spaces(87, 48, 9), tokenizer=vocabulary(tmp_path, 1407))
    expected = transformer_keys(3, 100, 1407, 9, 18, 6, 48)
    assert shapes(encoder) == expected and len(expected) == 9 + 12 * 3
    assert not list(encoder.buffers())
    # small_rnn's encoder: d 64, 2 layers, 4 heads, 3 scratch / numerical tokens, E 12 -> 192
    small = MetamonTstepEncoder(*obs_spaces(87, 48, 9), tokenizer=vocabulary(tmp_path, 1407), extra_emb_dim=12,
                                d_model=64, n_layers=2, n_heads=4, scratch_tokens=3, numerical_tokens=3)
    assert shapes(small) == transformer_keys(2, 64, 1407, 9, 12, 3, 48) and small.emb_dim == 192


def test_perceiver_state_dict_is_metamons(tmp_path):
    kwargs = dict(extra_emb_dim=12, d_model=64, n_layers=3, n_heads=4, latent_tokens=5, numerical_tokens=3,
                  max_tokens_per_turn=64)
    encoder = MetamonPerceiverTstepEncoder(*obs_spaces(106, 55, 13), tokenizer=vocabulary(tmp_path, 2541), **kwargs)
    expected = perceiver_keys(3, 64, 2541, 13, 12, 3, 55, 5, 64)
    assert shapes(encoder) == expected and len(expected) == 9 + 26 * 3
    assert not list(encoder.buffers()) and encoder.emb_dim == 320


def test_constructor_defaults_are_metamons(tmp_path):
    tok = vocabulary(tmp_path, 20)
    tf = MetamonTstepEncoder(*obs_spaces(5, 3, 2), tokenizer=tok)
    assert (tf.d_model, tf.scratch_tokens, tf.numerical_tokens, tf.extra_emb_dim, tf.dropout) == (100, 4, 6, 18, 0.05)
    assert len(tf.turn_embedding.tformer_embedding.emb_transformer.layers) == 3 and not tf.token_mask_aug
    pc = MetamonPerceiverTstepEncoder(*obs_spaces(5, 3, 2), tokenizer=tok)
    assert (pc.d_model, pc.latent_tokens, pc.numerical_tokens, pc.max_tokens_per_turn) == (100, 8, 6, 128)
    assert len(pc.turn_embedding.perceiver.cross_blocks) == 3 and pc.emb_dim == 800


# ------------------------------------------------------------------------------- behaviour


def small(cls, tmp_path, vocab=10, **kwargs):
    torch.manual_seed(0)
    extra = {"scratch_tokens": 3} if cls is MetamonTstepEncoder else {"latent_tokens": 3, "max_tokens_per_turn": 6}
    kwargs = {"d_model": 16, "n_layers": 1, "n_heads": 2, "numerical_tokens": 2, "dropout": 0.0, **extra, **kwargs}
    return cls(*obs_spaces(7, 5, 4), tokenizer=vocabulary(tmp_path, vocab), **kwargs)


def inputs(B=2, L=3, vocab=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    obs = {
        "text_tokens": torch.randint(-1, vocab, (B, L, 7), generator=g, dtype=torch.int32),
        "numbers": torch.randn(B, L, 5, generator=g),
        "illegal_actions": torch.zeros(B, L, 4, dtype=torch.bool),  # ignored by the encoders
    }
    return obs, torch.randn(B, L, 5, generator=g)


ENCODERS = [MetamonTstepEncoder, MetamonPerceiverTstepEncoder]


@pytest.mark.parametrize("cls", ENCODERS)
def test_each_timestep_is_encoded_on_its_own(cls, tmp_path):
    enc = small(cls, tmp_path).eval()
    obs, rl2s = inputs(B=2, L=4)
    base = enc(obs, rl2s)
    assert base.shape == (2, 4, 48)
    changed = {k: v.clone() for k, v in obs.items()}
    changed["text_tokens"][1, 2] = (changed["text_tokens"][1, 2] + 3) % 10
    rl2s2 = rl2s.clone()
    rl2s2[1, 2] += 1.0
    out = enc(changed, rl2s2)
    diff = (out - base).abs().amax(-1)
    assert diff[1, 2] > 1e-3
    diff[1, 2] = 0
    assert diff.max() < 1e-6
    single = enc({k: v[1:2, 2:3] for k, v in changed.items()}, rl2s2[1:2, 2:3])
    torch.testing.assert_close(single[0, 0], out[1, 2], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", ENCODERS)
def test_unknown_word_reads_row_zero(cls, tmp_path):
    enc = small(cls, tmp_path).eval()
    obs, rl2s = inputs(B=1, L=2)
    obs["text_tokens"][0, 0] = torch.tensor([-1, 0, 1, 2, 3, 4, 5])
    obs["text_tokens"][0, 1] = torch.tensor([0, 1, 2, 3, 4, 5, 6])
    out = enc(obs, rl2s)
    with torch.no_grad():
        enc.turn_embedding.token_embedding.text_emb.weight[0] += 1.0  # the unknown row
    moved = enc(obs, rl2s)
    assert (moved[0, 0] - out[0, 0]).abs().max() > 1e-3
    torch.testing.assert_close(moved[0, 1], out[0, 1])  # turn 1 has no unknown word
    with torch.no_grad():
        enc.turn_embedding.token_embedding.text_emb.weight[10] += 1.0  # word 9: not used here
    torch.testing.assert_close(enc(obs, rl2s), moved)


def test_scratch_tokens_are_zeros_at_the_end_with_positions_over_all_tokens(tmp_path):
    enc = small(MetamonTstepEncoder, tmp_path).eval()
    seen = {}
    layer = enc.turn_embedding.tformer_embedding.emb_transformer
    layer.register_forward_pre_hook(lambda module, args: seen.update(x=args[0]))
    obs, rl2s = inputs(B=1, L=1)
    enc(obs, rl2s)
    x = seen["x"][0]  # (T, d) = W + K + S tokens
    assert x.shape == (7 + 2 + 3, 16)
    torch.testing.assert_close(x[-3:], sinusoidal_positions(12, 16)[-3:])  # zero tokens + positions 9..11
    pe = sinusoidal_positions(12, 16)
    assert pe[5, 2] == pytest.approx(math.sin(5 * math.exp(-2 * math.log(10000) / 16)), abs=1e-6)
    assert pe[5, 3] == pytest.approx(math.cos(5 * math.exp(-2 * math.log(10000) / 16)), abs=1e-6)


def test_perceiver_positions_clamp_at_the_last_row(tmp_path):
    enc = small(MetamonPerceiverTstepEncoder, tmp_path).eval()  # T = 7 + 2 = 9 tokens, M = 6 rows
    obs, rl2s = inputs(B=1, L=1)
    seen = {}
    enc.turn_embedding.perceiver.register_forward_pre_hook(lambda module, args: seen.update(x=args[0]))
    enc(obs, rl2s)
    before = seen["x"][0].clone()
    with torch.no_grad():
        enc.turn_embedding.learned_pos.pos_emb.weight[5] += 1.0
    enc(obs, rl2s)
    moved = (seen["x"][0] - before).abs().amax(-1)
    assert torch.equal(moved > 0.5, torch.tensor([False] * 5 + [True] * 4))  # tokens 5..8 share row 5


@pytest.mark.parametrize("cls", ENCODERS)
def test_amago_padding_and_bad_ids(cls, tmp_path):
    tiny = small(cls, tmp_path, vocab=3).eval()  # id 4 is not a word of this vocabulary
    obs = {"text_tokens": torch.full((1, 2, 7), 4, dtype=torch.int64), "numbers": torch.full((1, 2, 5), 4.0)}
    obs["text_tokens"][0, 0] = torch.tensor([0, 1, 2, -1, 0, 1, 2])
    rl2s = torch.full((1, 2, 5), 4.0)
    rl2s[0, 0] = 0.0
    out = tiny(obs, rl2s)  # the padded timestep 1 (every value 4.0) is encoded without error
    assert out.shape == (1, 2, 48) and torch.isfinite(out).all()
    rl2s[0, 1, 0] = 0.0  # ... but a real timestep with id 4 is a clear error
    with pytest.raises(MetamonRLError, match=r"id 4, outside -1..2 of tokenizer .*vocab3\.json"):
        tiny(obs, rl2s)
    obs["text_tokens"][0, 1] = -2
    with pytest.raises(MetamonRLError, match="id -2, outside"):
        tiny(obs, rl2s)


@pytest.mark.parametrize("cls", ENCODERS)
def test_token_mask_aug(cls, tmp_path, monkeypatch):
    enc = small(cls, tmp_path, token_mask_aug=True)
    obs, rl2s = inputs(B=8, L=2)
    obs["text_tokens"] = obs["text_tokens"].clamp(min=0)
    enc.eval()
    assert torch.equal(enc(obs, rl2s), enc(obs, rl2s))  # eval: no masking
    seen = []
    embedding = enc.turn_embedding.token_embedding
    original = type(embedding).forward
    monkeypatch.setattr(type(embedding), "forward", lambda self, ids: seen.append(ids) or original(self, ids))
    enc.train()
    torch.manual_seed(0)
    with torch.no_grad():
        for _ in range(100):
            enc(obs, rl2s)
    ids = torch.stack(seen).view(100, 8, 2 * 7)  # (draw, sequence, L*W)
    masked = ids == -1
    assert torch.equal(ids[~masked], obs["text_tokens"].view(8, 14).expand(100, -1, -1)[~masked])
    expected = (1 - TOKEN_MASK_SKIP_PROB) * TOKEN_MASK_MAX_RATE / 2  # 0.132
    assert abs(masked.float().mean().item() - expected) < 0.02
    # a sequence keeps all 14 words when skipped (p = 0.2) or by chance: E_r[(1 - r)^14]
    r = TOKEN_MASK_MAX_RATE
    keep_all = TOKEN_MASK_SKIP_PROB + (1 - TOKEN_MASK_SKIP_PROB) * (1 - (1 - r) ** 15) / (15 * r)  # 0.361
    assert abs((~masked.any(-1)).float().mean().item() - keep_all) < 0.05


@pytest.mark.parametrize("cls", ENCODERS)
def test_bad_arguments(cls, tmp_path):
    obs_space, rl2_space = obs_spaces(7, 5, 4)
    tok = vocabulary(tmp_path, 10)
    name = cls.__name__
    with pytest.raises(RuntimeError, match=f"Required bindings for `{name}` not provided in config: \\['tokenizer'\\]"):
        cls(obs_space, rl2_space)
    with pytest.raises(MetamonRLError, match=f"{name}.tokenizer is required"):
        cls(obs_space, rl2_space, tokenizer=None)
    with pytest.raises(MetamonRLError, match=r"keys \['text_tokens', 'numbers'\]"):
        cls(spaces.Dict({"numbers": obs_space["numbers"]}), rl2_space, tokenizer=tok)
    with pytest.raises(MetamonRLError, match="divisible by n_heads"):
        cls(obs_space, rl2_space, tokenizer=tok, d_model=10, n_heads=3)
    with pytest.raises(MetamonRLError, match=f"{name}.numerical_tokens must be an int >= 1"):
        cls(obs_space, rl2_space, tokenizer=tok, numerical_tokens=0)
    enc = small(cls, tmp_path)
    obs, rl2s = inputs()
    with pytest.raises(MetamonRLError, match=r"expects observation keys \['text_tokens', 'numbers'\]"):
        enc({"numbers": obs["numbers"]}, rl2s)
    with pytest.raises(MetamonRLError, match="must hold integers"):
        enc(dict(obs, text_tokens=obs["text_tokens"].float()), rl2s)
    with pytest.raises(MetamonRLError, match=r"rl2s must be \(2, 3, 5\)"):
        enc(obs, rl2s[..., :3])


def test_odd_d_model_and_gin_tokenizer(tmp_path):
    obs_space, rl2_space = obs_spaces(7, 5, 4)
    with pytest.raises(MetamonRLError, match="d_model must be even"):
        MetamonTstepEncoder(obs_space, rl2_space, tokenizer=vocabulary(tmp_path, 10), d_model=15, n_heads=3)
    with pytest.raises(MetamonRLError, match="latent_tokens must be an int >= 1"):
        MetamonPerceiverTstepEncoder(obs_space, rl2_space, tokenizer=vocabulary(tmp_path, 10), latent_tokens=0)
    gin.bind_parameter("MetamonPerceiverTstepEncoder.tokenizer", vocabulary(tmp_path, 12))
    gin.bind_parameter("MetamonPerceiverTstepEncoder.d_model", 8)
    gin.bind_parameter("MetamonPerceiverTstepEncoder.n_heads", 2)
    enc = MetamonPerceiverTstepEncoder(obs_space, rl2_space)
    assert enc.vocab_size == 12 and enc.emb_dim == 8 * 8
