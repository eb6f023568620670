"""GemmaTstepEncoder on a tiny random Gemma-3 + local subword tokenizer (saved, then reloaded
through from_pretrained): text ids, training modes, padding, pooling, sharing, 4-bit."""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from metamon.amago.checkpoints import load_weights, save_weights
from metamon.rl import MetamonRLError
from metamon.rl.gemma_encoder import GemmaTstepEncoder
from metamon.rl.gemma_tiny import save_tiny_gemma

V, W, N, A = 3697, 106, 55, 13  # default vocabulary, words, numbers, actions
H, D_NUM = 64, 32  # tiny Gemma width, numeric branch width


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return save_tiny_gemma(tmp_path_factory.mktemp("tiny_gemma"))


def gym_spaces():
    obs = spaces.Dict({"text_tokens": spaces.Box(-1, V, (W,), np.int32),
                       "numbers": spaces.Box(-10, 10, (N,), np.float32)})
    return obs, spaces.Box(-np.inf, np.inf, (A + 1,), np.float32)


def encoder(model_dir, **kwargs):
    torch.manual_seed(0)
    kwargs = {"numerical_emb_dim": D_NUM, "dropout": 0.0, "lora_dropout": 0.0, "lora_r": 4, **kwargs}
    return GemmaTstepEncoder(*gym_spaces(), model_name=str(model_dir), **kwargs)


def inputs(B=2, L=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, V, (B, L, W), generator=g)
    tokens[torch.rand(B, L, W, generator=g) < 0.3] = -1
    obs = {"text_tokens": tokens.int(), "numbers": torch.randn(B, L, N, generator=g),
           "illegal_actions": torch.zeros(B, L, A, dtype=torch.bool)}  # ignored
    return obs, torch.randn(B, L, A + 1, generator=g)


def hf_ids(enc, rows, max_length=512):
    texts = [enc.observation_text(r) for r in rows]
    out = enc.hf_tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return out["input_ids"], out["attention_mask"]


# ------------------------------------------------------------------------------ text path
@pytest.mark.parametrize("max_text_tokens", [512, 20])
def test_table_ids_equal_the_hf_tokenizer(tiny_dir, max_text_tokens):
    enc = encoder(tiny_dir, max_text_tokens=max_text_tokens)
    assert enc.text_path == "table"
    obs, _ = inputs(B=4, L=2, seed=3)
    rows = obs["text_tokens"].reshape(-1, W).long()
    rows[0] = -1  # nothing known -> <bos> only
    rows[1, 5:] = -1
    ids, mask = enc.gemma_inputs(rows)
    want_ids, want_mask = hf_ids(enc, rows, max_text_tokens)
    assert torch.equal(ids, want_ids) and torch.equal(mask, want_mask)
    assert ids[0, 0] == 2 and mask[0].sum() == 1  # <bos> alone
    if max_text_tokens == 20:
        assert ids.shape[1] == 20
    else:
        assert ids.shape[1] > 2 * W  # words split into several pieces
    # the two forms of a word: "<player>" alone vs after a space
    word = list(enc.words).index("<player>")
    first = enc.gemma_inputs(torch.tensor([[word] + [-1] * (W - 1)]))[0][0, 1:].tolist()
    assert first == enc.hf_tokenizer("<player>", add_special_tokens=False)["input_ids"]
    assert enc.observation_text(torch.tensor([word, -1, word])) == "<player> <player>"


def test_tokenizer_path_gives_the_same_embeddings(tiny_dir):
    fast, slow = encoder(tiny_dir).eval(), encoder(tiny_dir, text_path="tokenizer").eval()
    assert slow.text_path == "tokenizer"
    obs, rl2s = inputs()
    with torch.no_grad():
        torch.testing.assert_close(fast(obs, rl2s), slow(obs, rl2s), atol=0, rtol=0)


def test_fallback_when_the_tokenizer_merges_across_spaces(tmp_path):
    merged = save_tiny_gemma(tmp_path / "merging", split_words=False)
    with pytest.warns(UserWarning, match="merges pieces across spaces"):
        enc = encoder(merged)
    assert enc.text_path == "tokenizer"
    rows = inputs()[0]["text_tokens"].reshape(-1, W).long()
    assert all(torch.equal(a, b) for a, b in zip(enc.gemma_inputs(rows), hf_ids(enc, rows)))
    with pytest.raises(MetamonRLError, match="text_path='table'"):
        encoder(merged, text_path="table")


# ------------------------------------------------------------------------------ forward
def test_shapes_padding_and_batch_invariance(tiny_dir):
    enc = encoder(tiny_dir).eval()
    assert enc.hidden_size == H and enc.emb_dim == H + D_NUM
    obs, rl2s = inputs(B=2, L=3)
    rl2s[1, 1:] = 4.0  # AMAGO padding
    obs["text_tokens"][1, 1:] = 4
    calls = _rows_seen(enc)
    out = enc(obs, rl2s)
    assert out.shape == (2, 3, H + D_NUM) and out.dtype == torch.float32
    assert calls == [4]  # only the 4 real timesteps went through Gemma
    assert torch.equal(out[1, 1:, :H], torch.zeros(2, H))
    # LayerNorm'd text part of real steps: zero mean per row
    torch.testing.assert_close(out[0, :, :H].mean(-1), torch.zeros(3), atol=1e-5, rtol=0)
    # the same observation alone (no Gemma padding, batch of 1) gives the same embedding
    alone = enc({k: v[:1, 2:3] for k, v in obs.items()}, rl2s[:1, 2:3])
    torch.testing.assert_close(alone[0, 0], out[0, 2], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "last", "first"])
def test_pooling_by_hand(tiny_dir, pooling):
    enc = encoder(tiny_dir, pooling=pooling, text_norm=False).eval()
    obs, rl2s = inputs(B=1, L=2)
    out = enc(obs, rl2s)
    for t in range(2):
        ids = torch.tensor([enc.hf_tokenizer(enc.observation_text(obs["text_tokens"][0, t]))["input_ids"]])
        h = enc.backbone(input_ids=ids).last_hidden_state[0]
        want = {"mean": h.mean(0), "last": h[-1], "first": h[0]}[pooling]
        torch.testing.assert_close(out[0, t, :H], want, atol=1e-5, rtol=1e-5)


def _train_steps(enc, steps=3):
    opt = torch.optim.Adam([p for p in enc.parameters() if p.requires_grad], lr=1e-2)
    obs, rl2s = inputs()
    for _ in range(steps):
        opt.zero_grad()
        enc(obs, rl2s).pow(2).mean().backward()
        opt.step()


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


HEADS = {"extra_emb.weight", "extra_emb.bias", "numerical_emb.weight", "numerical_emb.bias",
         "text_norm.weight", "text_norm.bias"}


def test_lora_trains_only_the_adapters_and_heads(tiny_dir):
    enc = encoder(tiny_dir).train()
    trained = {n for n, p in enc.named_parameters() if p.requires_grad}
    lora = {n for n in trained if ".lora_A." in n or ".lora_B." in n}
    assert trained == lora | HEADS and len(lora) == 2 * 7 * 2  # A, B x 7 modules x 2 layers
    before = _snapshot(enc.backbone)
    _train_steps(enc)
    after = enc.backbone.state_dict()
    for key, value in before.items():
        if "lora_" in key:
            continue
        assert torch.equal(value, after[key]), key  # base bit-identical
    assert all(not torch.equal(before[k], after[k]) for k in after if "lora_B" in k)


def test_frozen_and_full_finetuning(tiny_dir):
    frozen = encoder(tiny_dir, use_lora=False, freeze_base_model=True).train()
    assert not frozen.gemma_trains
    assert {n for n, p in frozen.named_parameters() if p.requires_grad} == HEADS
    before = _snapshot(frozen.backbone)
    _train_steps(frozen)
    assert all(torch.equal(v, frozen.backbone.state_dict()[k]) for k, v in before.items())
    full = encoder(tiny_dir, use_lora=False).train()
    assert all(p.requires_grad for p in full.backbone.parameters())
    before = _snapshot(full.backbone)
    _train_steps(full, steps=1)
    assert not torch.equal(before["layers.0.self_attn.q_proj.weight"],
                           full.backbone.state_dict()["layers.0.self_attn.q_proj.weight"])


def test_bfloat16_backbone_fp32_output(tiny_dir):
    enc = encoder(tiny_dir, dtype="bfloat16").eval()
    assert enc.backbone.get_base_model().embed_tokens.weight.dtype == torch.bfloat16
    obs, rl2s = inputs()
    out, ref = enc(obs, rl2s), encoder(tiny_dir).eval()(obs, rl2s)  # same seed, fp32 backbone
    assert out.dtype == torch.float32
    torch.testing.assert_close(out[..., :H], ref[..., :H], atol=0.1, rtol=0)  # bf16 rounding only
    assert torch.equal(out[..., H:], ref[..., H:])  # the numeric branch stays fp32


def _rows_seen(enc):
    """Record how many observations each backbone call gets."""
    calls = []
    enc.backbone.register_forward_hook(lambda m, a, k, out: calls.append(k["input_ids"].shape[0]), with_kwargs=True)
    return calls


def _repeating_inputs():
    """B=2, L=4 with 4 distinct texts among 7 real steps (+1 padding step); numbers differ."""
    obs, rl2s = inputs(B=2, L=4, seed=5)
    tokens = obs["text_tokens"]
    tokens[0, 1] = tokens[0, 0]
    tokens[1, 0] = tokens[0, 0]
    tokens[1, 2] = tokens[0, 3]
    rl2s[1, 3] = 4.0  # AMAGO padding
    tokens[1, 3] = 4
    return obs, rl2s


def test_deduplicate_runs_gemma_once_per_text_with_the_same_loss_and_gradients(tiny_dir):
    obs, rl2s = _repeating_inputs()
    results = {}
    for dedup in (True, False):
        enc = encoder(tiny_dir, deduplicate=dedup).train()  # same seed: same weights
        calls = _rows_seen(enc)
        loss = enc(obs, rl2s).pow(2).mean()
        loss.backward()
        grads = {n: p.grad.clone() for n, p in enc.named_parameters() if p.requires_grad}
        results[dedup] = (calls, loss.detach(), grads)
    assert results[True][0] == [4] and results[False][0] == [7]
    torch.testing.assert_close(results[True][1], results[False][1], atol=1e-6, rtol=1e-6)
    assert results[True][2].keys() == results[False][2].keys()
    for name, grad in results[True][2].items():
        torch.testing.assert_close(grad, results[False][2][name], atol=1e-6, rtol=1e-4, msg=name)
    assert any(g.abs().sum() > 0 for n, g in results[True][2].items() if "lora_B" in n)


def test_frozen_feature_cache(tiny_dir):
    obs, rl2s = _repeating_inputs()
    plain = encoder(tiny_dir, use_lora=False, freeze_base_model=True).eval()
    cached = encoder(tiny_dir, use_lora=False, freeze_base_model=True, feature_cache_size=10).eval()
    calls = _rows_seen(cached)
    want = plain(obs, rl2s)
    torch.testing.assert_close(cached(obs, rl2s), want, atol=0, rtol=0)
    assert calls == [4] and dict(cached.cache_stats) == {"hits": 0, "misses": 4}
    out = cached(obs, rl2s)  # every text is cached now: Gemma does not run
    assert calls == [4] and dict(cached.cache_stats) == {"hits": 4, "misses": 4}
    torch.testing.assert_close(out, want, atol=0, rtol=0)
    out.sum().backward()  # the heads still train on cached features
    assert cached.text_norm.weight.grad is not None
    # one new text among cached ones: only it goes through Gemma
    obs["text_tokens"][0, 2] = obs["text_tokens"][0, 2].flip(0)
    # (atol: Gemma ran on 1 unpadded row here, on 5 padded rows in plain)
    torch.testing.assert_close(cached(obs, rl2s), plain(obs, rl2s), atol=1e-5, rtol=1e-5)
    assert calls == [4, 1] and len(cached._feature_cache) == 5
    # least recently used entries go first
    small = encoder(tiny_dir, use_lora=False, freeze_base_model=True, feature_cache_size=2).eval()
    small(obs, rl2s)
    assert len(small._feature_cache) == 2
    # new weights empty the cache
    cached.load_state_dict(plain.state_dict())
    assert len(cached._feature_cache) == 0
    with pytest.raises(MetamonRLError, match="feature_cache_size=8 needs a frozen backbone"):
        encoder(tiny_dir, feature_cache_size=8)
    with pytest.raises(MetamonRLError, match="feature_cache_size must be an int >= 0"):
        encoder(tiny_dir, use_lora=False, freeze_base_model=True, feature_cache_size=-1)


# ------------------------------------------------------------------------------ saving
def test_state_dict_and_adapter_round_trips(tiny_dir, tmp_path):
    # lazy: peft/transformers are heavy; collecting this module must not import them
    from peft import PeftModel
    from transformers import AutoModel

    enc = encoder(tiny_dir).train()
    _train_steps(enc)
    enc.eval()
    obs, rl2s = inputs()
    with torch.no_grad():
        want = enc(obs, rl2s)
        other = encoder(tiny_dir).eval()
        other.load_state_dict(enc.state_dict())
        assert torch.equal(other(obs, rl2s), want)
        ids = torch.tensor([[2, 10, 11, 12]])
        h = enc.backbone(input_ids=ids).last_hidden_state
        adapter = enc.save_adapter(tmp_path / "adapter")
        assert (adapter / "adapter_model.safetensors").is_file()
        reloaded = PeftModel.from_pretrained(AutoModel.from_pretrained(tiny_dir), adapter)
        assert torch.equal(reloaded(input_ids=ids).last_hidden_state, h)
        merged = AutoModel.from_pretrained(enc.save_adapter(tmp_path / "merged", merge=True))
        torch.testing.assert_close(merged(input_ids=ids).last_hidden_state, h, atol=1e-5, rtol=1e-5)
    assert enc.use_lora and ".lora_A." in "".join(enc.state_dict())  # merging left enc unchanged


# ------------------------------------------------------------------------------ bad input / 4-bit
def test_bad_input_is_named(tiny_dir, tmp_path):
    enc = encoder(tiny_dir)
    obs, rl2s = inputs()
    obs["text_tokens"][0, 0, 0] = V
    with pytest.raises(MetamonRLError, match="outside -1..3696"):
        enc(obs, rl2s)
    with pytest.raises(MetamonRLError, match="must hold integers"):
        enc({**obs, "text_tokens": obs["text_tokens"].float()}, rl2s)
    with pytest.raises(MetamonRLError, match="pooling"):
        encoder(tiny_dir, pooling="max")
    with pytest.raises(MetamonRLError, match="model_name='.*nowhere'"):
        encoder(tmp_path / "nowhere")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_4bit_refused_without_cuda(tiny_dir):
    with pytest.raises(MetamonRLError, match="needs a CUDA GPU.*silently drops gradients"):
        encoder(tiny_dir, use_4bit=True)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="4-bit needs CUDA: bitsandbytes' CPU 4-bit path silently corrupts gradients")
def test_4bit_lora_on_cuda(tiny_dir, tmp_path):
    pytest.importorskip("bitsandbytes")
    enc = encoder(tiny_dir, use_4bit=True).cuda().train()
    obs, rl2s = inputs()
    obs, rl2s = {k: v.cuda() for k, v in obs.items()}, rl2s.cuda()
    base = {k: v.clone() for k, v in enc.backbone.state_dict().items() if "lora_" not in k}
    _train_steps_cuda = torch.optim.Adam([p for p in enc.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        _train_steps_cuda.zero_grad()
        enc(obs, rl2s).pow(2).mean().backward()
        _train_steps_cuda.step()
    after = enc.backbone.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in base.items())
    assert any("lora_B" in k and after[k].abs().sum() > 0 for k in after)
    enc.eval()
    with torch.no_grad():
        want = enc(obs, rl2s)
        assert want.dtype == torch.float32
        save_weights(enc, tmp_path / "enc.safetensors")  # the agent checkpoints' format
        other = encoder(tiny_dir, use_4bit=True).cuda().eval()
        load_weights(other, tmp_path / "enc.safetensors")
        assert torch.equal(other(obs, rl2s), want)
