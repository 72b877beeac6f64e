"""load_captioner: every kind of spec, and every failure as a readable ModelLoadError (nothing executed)."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from captioner.decoding import caption_image
from captioner.loading import ModelLoadError, infer_visiongpt2_config, load_captioner, resolve_default_model
from tests.tiny_models import make_tiny_visiongpt2, make_word_tokenizer

IMAGE = Image.new("RGB", (40, 40), (90, 120, 200))


def seed_dir(tmp_path, state=None):
    """A folder with captioner.pt (seed layout) and a tokenizer beside it."""
    state = make_tiny_visiongpt2().seed_state_dict() if state is None else state
    torch.save(state, tmp_path / "captioner.pt")
    make_word_tokenizer().save_pretrained(str(tmp_path))
    return tmp_path / "captioner.pt"


def test_loads_seed_checkpoint_and_infers_config(tmp_path):
    path = seed_dir(tmp_path)
    model = load_captioner(str(path))
    c = model.config
    assert (c.depth, c.embed_dim, c.num_heads, c.vocab_size, c.seq_len, c.image_size, c.patch_size) == (2, 32, 1, 62, 40, 32, 8)
    # Heads are not in the shapes: head size 64 is assumed unless a config.json says otherwise.
    (tmp_path / "config.json").write_text('{"architecture": "VisionGPT2", "num_heads": 4}')
    model = load_captioner(str(path))
    assert model.config.num_heads == 4
    ref = make_tiny_visiongpt2()
    pixels = model.preprocess([IMAGE])
    ids = torch.tensor([[0, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(model.model(pixels, ids), ref(pixels, ids))
    assert caption_image(model, IMAGE)[0].best.token_ids


def test_loads_directory_and_safetensors(tmp_path):
    model = make_tiny_visiongpt2()
    state = {k: v.clone() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text('{"architecture": "VisionGPT2", "num_heads": 4}')
    make_word_tokenizer().save_pretrained(str(tmp_path))
    loaded = load_captioner(str(tmp_path))
    assert loaded.model.lm_head.weight is loaded.model.transformer.wte.weight
    assert loaded.config.num_heads == 4
    bf16 = load_captioner(str(tmp_path), dtype="bfloat16")
    assert bf16.model.lm_head.weight.dtype == torch.bfloat16
    assert caption_image(bf16, IMAGE)[0].best.token_ids


def test_hf_directory(tiny_hf_dir):
    model = load_captioner(str(tiny_hf_dir))
    assert model.info.family == "hf-vision-encoder-decoder"
    assert model.grid == (4, 4)
    assert caption_image(model, IMAGE)[0].best.attentions.shape[1:] == (2, 4, 4, 4)


def test_hf_directory_in_bf16_is_the_fp32_file_converted(tiny_hf_dir):
    fp32 = load_captioner(str(tiny_hf_dir)).model.state_dict()
    bf16 = load_captioner(str(tiny_hf_dir), dtype="bfloat16")
    for name, tensor in bf16.model.state_dict().items():
        expected = fp32[name].to(torch.bfloat16) if fp32[name].is_floating_point() else fp32[name]
        assert torch.equal(tensor, expected), name
    decoder = bf16.model.decoder
    assert decoder.lm_head.weight is decoder.transformer.wte.weight  # still tied
    assert caption_image(bf16, IMAGE)[0].best.token_ids


class MakesAFile:
    """Unpickling this would create a file: loading must refuse it and run nothing."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "captioner.pt"
    torch.save({"transformer.wte.weight": torch.zeros(2, 2), "x": MakesAFile(str(target))}, path)
    assert not target.exists()
    with pytest.raises(ModelLoadError, match="needs code to run.*Nothing from the file was executed"):
        load_captioner(str(path))
    assert not target.exists()
    # An old-style (non-zip) pickle too.
    legacy = tmp_path / "legacy.pt"
    with open(legacy, "wb") as f:
        pickle.dump(MakesAFile(str(target)), f)
    with pytest.raises(ModelLoadError):
        load_captioner(str(legacy))
    assert not target.exists()


def broken_state(kind):
    state = make_tiny_visiongpt2().seed_state_dict()
    if kind == "missing":
        del state["transformer.h.1.mlp.c_fc.weight"]
        del state["blocks.0.norm1.bias"]
    elif kind == "extra":
        state["transformer.h.0.adapter.weight"] = torch.zeros(3)
    elif kind == "shape":
        state["transformer.h.0.cross_attn.q.weight"] = torch.zeros(32, 16)
    elif kind == "grid":
        state["pos_embed"] = torch.zeros(1, 20, 32)
    elif kind == "not-visiongpt2":
        state = {"encoder.weight": torch.zeros(3, 3)}
    return state


@pytest.mark.parametrize(
    "kind,message",
    [
        ("missing", r"missing keys: blocks\.0\.norm1\.bias, transformer\.h\.1\.mlp\.c_fc\.weight.*Inferred config: depth 2"),
        ("extra", r"unexpected keys: transformer\.h\.0\.adapter\.weight"),
        ("shape", r"wrong shapes: transformer\.h\.0\.cross_attn\.q\.weight \(32, 16\) \(expected \(32, 32\)\)"),
        ("grid", r"Shapes fit no VisionGPT2 config: pos_embed has 20 tokens"),
        ("not-visiongpt2", r"not a VisionGPT2 checkpoint: missing transformer\.wte\.weight"),
    ],
)
def test_mismatched_state_dicts_are_named(tmp_path, kind, message):
    path = seed_dir(tmp_path, broken_state(kind))
    with pytest.raises(ModelLoadError, match=message):
        load_captioner(str(path))


def test_truncated_and_junk_files(tmp_path):
    good = seed_dir(tmp_path)
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="not a PyTorch checkpoint"):
        load_captioner(str(tmp_path / "truncated.pt"))
    save_file({"a": torch.zeros(100)}, str(tmp_path / "w.safetensors"))
    blob = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "t.safetensors").write_bytes(blob[:-50])
    with pytest.raises(ModelLoadError, match="not a readable safetensors file"):
        load_captioner(str(tmp_path / "t.safetensors"))
    (tmp_path / "text.pt").write_text("hello, I am not a checkpoint")
    with pytest.raises(ModelLoadError, match="not a PyTorch checkpoint"):
        load_captioner(str(tmp_path / "text.pt"))
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        load_captioner(str(tmp_path / "empty.pt"))
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ModelLoadError, match="holds no state dict"):
        load_captioner(str(tmp_path / "list.pt"))
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n")
    with pytest.raises(ModelLoadError, match="not a checkpoint file"):
        load_captioner(str(tmp_path / "image.png"))


def test_wrapped_training_checkpoint_is_accepted(tmp_path):
    state = make_tiny_visiongpt2().seed_state_dict()
    path = seed_dir(tmp_path, {"model": state, "step": torch.tensor(3)})
    assert load_captioner(str(path)).config.depth == 2


def test_missing_paths_and_directories(tmp_path):
    with pytest.raises(ModelLoadError, match="No such file or directory"):
        load_captioner(str(tmp_path / "nope.pt"))
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_captioner(str(tmp_path / "empty-dir"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelLoadError, match="bert model"):
        load_captioner(str(tmp_path / "other"))
    (tmp_path / "badjson").mkdir()
    (tmp_path / "badjson" / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_captioner(str(tmp_path / "badjson"))
    with pytest.raises(ModelLoadError, match="No model given"):
        load_captioner("  ")
    with pytest.raises(ModelLoadError, match="Unknown dtype"):
        load_captioner("builtin", dtype="float8")


def test_no_tokenizer_while_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    torch.save(make_tiny_visiongpt2().seed_state_dict(), tmp_path / "captioner.pt")
    with pytest.raises(ModelLoadError, match="GPT-2's tokenizer is neither in the local Hugging Face cache nor reachable"):
        load_captioner(str(tmp_path / "captioner.pt"))


def test_hub_id_while_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(ModelLoadError, match="Could not load nlpconnect/vit-gpt2-image-captioning from the Hugging Face hub"):
        load_captioner("nlpconnect/vit-gpt2-image-captioning")


def test_default_resolution_without_hub(tmp_path, monkeypatch):
    monkeypatch.delenv("CAPTIONER_MODEL", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    spec, reason, _ = resolve_default_model(timeout=1.0)
    assert spec == "builtin" and "hub did not answer" in reason
    monkeypatch.setenv("CAPTIONER_MODEL", str(tmp_path))
    assert resolve_default_model() == (str(tmp_path), "named by the CAPTIONER_MODEL environment variable", False)


def test_infer_full_size_config():
    with torch.device("meta"):
        from captioner.models.visiongpt2 import VisionGPT2
        from captioner.config import VisionGPT2Config

        state = VisionGPT2(VisionGPT2Config()).seed_state_dict()
    config = infer_visiongpt2_config(state)
    assert (config.depth, config.embed_dim, config.num_heads, config.mlp_ratio, config.image_size, config.patch_size) == (12, 768, 12, 4, 224, 16)
    assert (config.vocab_size, config.seq_len) == (50257, 1024)
