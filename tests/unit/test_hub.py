"""metamon.hub.hub_download: one file of any Hub repository (datasets today, checkpoints later),
without network access (conftest sets HF_HUB_OFFLINE=1; the Hub API is replaced where needed)."""

from pathlib import Path

import huggingface_hub
import pytest

from metamon.errors import MetamonError
from metamon.hub import hub_download


def test_hub_download_of_a_model_file(tmp_path, monkeypatch):
    calls = []

    def fake_download(**kwargs):
        calls.append(kwargs)
        target = Path(kwargs["local_dir"]) / kwargs["filename"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"weights")
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    path = hub_download("someone/some-model", "ckpts/policy_epoch_4.safetensors", revision="main",
                        local_dir=tmp_path, repo_type="model")
    assert path == tmp_path / "ckpts" / "policy_epoch_4.safetensors" and path.read_bytes() == b"weights"
    assert calls == [dict(repo_id="someone/some-model", filename="ckpts/policy_epoch_4.safetensors",
                          repo_type="model", revision="main", local_dir=tmp_path)]


def test_hub_download_offline_names_repo_file_revision_and_hint(tmp_path):
    with pytest.raises(MetamonError) as e:
        hub_download("someone/some-model", "config.gin", revision="v2", local_dir=tmp_path, repo_type="model",
                     offline_hint="Copy it by hand.")
    assert str(e.value) == (
        "Could not reach the Hugging Face Hub (HF_HUB_OFFLINE is set) to download 'config.gin' at "
        "revision 'v2' of the Hub model 'someone/some-model'. Copy it by hand."
    )
    assert not (tmp_path / "config.gin").exists()
