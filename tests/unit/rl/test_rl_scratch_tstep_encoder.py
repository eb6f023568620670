"""ScratchTstepEncoder: shapes, per-timestep independence, unknown/pad ids, augmentation."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from metamon.interface import TeamPreviewObservationSpace, TokenizedObservationSpace
from metamon.rl import MetamonRLError
from metamon.rl.scratch_tstep_encoder import ScratchTstepEncoder
from metamon.tokenizer import PokemonTokenizer, get_tokenizer

W, N, A = 7, 5, 4  # words, numbers, actions


def small_tokenizer(n_words=10):
    tok = PokemonTokenizer()
    tok.load_tokens({f"w{i}": i for i in range(n_words)})
    return tok


def spaces_for(words=W, numbers=N, actions=A, vocab=10):
    obs_space = spaces.Dict({
        "text_tokens": spaces.Box(-1, vocab, (words,), np.int32),
        "numbers": spaces.Box(-10, 10, (numbers,), np.float32),
        "illegal_actions": spaces.Box(0, 1, (actions,), bool),
    })
    return obs_space, spaces.Box(-np.inf, np.inf, (actions + 1,), np.float32)


def encoder(tokenizer=None, **kwargs):
    torch.manual_seed(0)
    kwargs = {"d_model": 16, "n_layers": 1, "n_heads": 2, "scratch_tokens": 3,
              "numerical_tokens": 2, "dropout": 0.0, **kwargs}
    return ScratchTstepEncoder(*spaces_for(), tokenizer=tokenizer or small_tokenizer(), **kwargs)


def inputs(B=2, L=3, vocab=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    obs = {
        "text_tokens": torch.randint(0, vocab, (B, L, W), generator=g, dtype=torch.int32),
        "numbers": torch.randn(B, L, N, generator=g),
        "illegal_actions": torch.zeros(B, L, A, dtype=torch.bool),  # ignored by the encoder
    }
    rl2s = torch.randn(B, L, A + 1, generator=g)
    return obs, rl2s


def test_shapes_and_emb_dim():
    enc = encoder().eval()
    assert enc.emb_dim == 3 * 16
    assert enc.vocab_size == 10 and enc.token_emb.weight.shape == (11, 16)
    obs, rl2s = inputs()
    out = enc(obs, rl2s)
    assert out.shape == (2, 3, 48) and out.dtype == torch.float32
    # output LayerNorm over the flattened scratch tokens: zero mean, unit variance per row
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 3), atol=1e-3, rtol=0)
    # parameter count of the small config, computed by hand
    d, S, K, E = 16, 3, 2, 18
    expected = (
        (A + 1) * E + E  # extra_emb
        + (N + E) * K * d + K * d  # numbers_to_tokens
        + 11 * d + W * d + S * d  # token_emb, pos_emb, scratch
        + (3 * d * d + 3 * d + d * d + d) + (d * 4 * d + 4 * d + 4 * d * d + d) + 4 * d  # 1 layer
        + 2 * S * d  # out_norm
    )
    assert sum(p.numel() for p in enc.parameters()) == expected


def test_each_timestep_is_encoded_on_its_own():
    enc = encoder().eval()
    obs, rl2s = inputs(B=2, L=4)
    base = enc(obs, rl2s)
    changed = {k: v.clone() for k, v in obs.items()}
    changed["text_tokens"][1, 2] = (changed["text_tokens"][1, 2] + 3) % 10
    changed["numbers"][1, 2] += 1.0
    rl2s2 = rl2s.clone()
    rl2s2[1, 2] += 1.0
    out = enc(changed, rl2s2)
    diff = (out - base).abs().amax(-1)
    assert diff[1, 2] > 1e-3  # the changed timestep moves
    diff[1, 2] = 0
    assert diff.max() < 1e-6  # nothing else does
    # the same timestep alone (L = 1) gives the same vector
    single = enc({k: v[1:2, 2:3] for k, v in changed.items()}, rl2s2[1:2, 2:3])
    torch.testing.assert_close(single[0, 0], out[1, 2], atol=1e-5, rtol=1e-5)


def test_unknown_and_pad_ids():
    enc = encoder().eval()
    obs, rl2s = inputs(B=1, L=2)
    obs["text_tokens"][0, 0, :3] = -1  # unknown words
    out = enc(obs, rl2s)
    assert torch.isfinite(out).all()
    # -1 reads the dedicated last row: moving that row changes the output, other rows' don't
    with torch.no_grad():
        enc.token_emb.weight[10] += torch.linspace(-1, 1, 16)  # not a constant: LayerNorm hides those
    moved = enc(obs, rl2s)
    assert (moved[0, 0] - out[0, 0]).abs().max() > 1e-3
    torch.testing.assert_close(moved[:, 1], out[:, 1])  # timestep 1 has no unknown word

    # AMAGO padding: every value 4 (a real id here) and rl2s all 4.0 -> finite, and a padded
    # timestep reads as all-unknown text, so it works even with a vocabulary of 3 words
    tiny = encoder(tokenizer=small_tokenizer(3)).eval()
    pad_obs = {
        "text_tokens": torch.full((1, 2, W), 4, dtype=torch.int64),
        "numbers": torch.full((1, 2, N), 4.0),
    }
    pad_obs["text_tokens"][0, 0] = torch.tensor([0, 1, 2, -1, 0, 1, 2])
    pad_rl2s = torch.full((1, 2, A + 1), 4.0)
    pad_rl2s[0, 0] = 0.0
    out = tiny(pad_obs, pad_rl2s)
    assert out.shape == (1, 2, 48) and torch.isfinite(out).all()
    unknown = dict(pad_obs, text_tokens=torch.full((1, 2, W), -1))
    torch.testing.assert_close(tiny(unknown, pad_rl2s)[0, 1], out[0, 1])
    # ... but a real timestep with id 4 in a 3-word vocabulary is a clear error
    pad_rl2s[0, 1, 0] = 0.0
    with pytest.raises(MetamonRLError, match="id 4, outside -1..2"):
        tiny(pad_obs, pad_rl2s)


def test_token_mask_aug_only_in_training():
    enc = encoder(token_mask_aug=True, dropout=0.0)
    obs, rl2s = inputs(B=8, L=2)
    enc.eval()
    a, b = enc(obs, rl2s), enc(obs, rl2s)
    assert torch.equal(a, b)  # eval: deterministic, no masking
    ids = enc._token_ids(obs["text_tokens"].long(), rl2s)
    assert (ids < 10).all()
    enc.train()
    torch.manual_seed(0)
    masked = torch.stack([enc._token_ids(obs["text_tokens"].long(), rl2s) for _ in range(200)])
    frac = (masked == 10).float().mean().item()  # 0.8 * E[U(0, .33)] = 0.132
    assert 0.09 < frac < 0.17
    per_seq = (masked == 10).flatten(2).any(-1).float().mean().item()
    assert 0.6 < per_seq < 0.85  # about 80 % of sequences are touched at all


def test_default_tokenizer_and_real_observation_space():
    tok = get_tokenizer()
    space = TokenizedObservationSpace(TeamPreviewObservationSpace(), tok).gym_space
    rl2 = spaces.Box(-np.inf, np.inf, (14,), np.float32)
    enc = ScratchTstepEncoder(space, rl2, d_model=8, n_layers=1, n_heads=2, scratch_tokens=2,
                              numerical_tokens=1).eval()
    assert enc.vocab_size == len(tok) and enc.tokenizer_name == tok.name
    assert enc.n_words == 106 and enc.n_numbers == 55
    obs = {"text_tokens": torch.randint(-1, len(tok), (1, 2, 106)), "numbers": torch.zeros(1, 2, 55)}
    assert enc(obs, torch.zeros(1, 2, 14)).shape == (1, 2, 16)


def test_bad_inputs():
    enc = encoder()
    obs, rl2s = inputs()
    with pytest.raises(MetamonRLError, match=r"expects observation keys \['text_tokens', 'numbers'\]"):
        enc({"numbers": obs["numbers"]}, rl2s)
    with pytest.raises(MetamonRLError, match="must hold integers"):
        enc(dict(obs, text_tokens=obs["text_tokens"].float()), rl2s)
    with pytest.raises(MetamonRLError, match=r"obs\['numbers'\] must be"):
        enc(dict(obs, numbers=obs["numbers"][..., :2]), rl2s)
    obs_space, rl2_space = spaces_for()
    with pytest.raises(MetamonRLError, match=r"keys \['text_tokens', 'numbers'\]"):
        ScratchTstepEncoder(spaces.Dict({"numbers": obs_space["numbers"]}), rl2_space)
    with pytest.raises(MetamonRLError, match="divisible by n_heads"):
        ScratchTstepEncoder(obs_space, rl2_space, tokenizer=small_tokenizer(), d_model=10, n_heads=3)
    with pytest.raises(MetamonRLError, match="scratch_tokens must be an int >= 1"):
        ScratchTstepEncoder(obs_space, rl2_space, tokenizer=small_tokenizer(), scratch_tokens=0)
