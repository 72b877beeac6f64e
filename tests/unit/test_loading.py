"""load_captioner: every kind of spec, GPT-2's tokenizer in every layout a user has, the default model,
generation defaults, and every failure as a readable ModelLoadError (nothing executed).

Every VisionGPT2 fixture here carries a tokenizer shaped like GPT-2's (byte-level BPE, unk = bos = eos =
<|endoftext|> as the last id, no pad), saved as people have it (tests/tiny_models.py).
"""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from captioner import loading
from captioner.config import DecodingConfig
from captioner.decoding import caption_image
from captioner.loading import (
    ModelLoadError,
    end_of_text_id,
    infer_visiongpt2_config,
    load_captioner,
    load_default_captioner,
    resolve_default_model,
)
from tests.tiny_models import (
    END_OF_TEXT,
    TOKENIZER_LAYOUTS,
    make_gpt2_cache,
    make_gpt2_tiny_visiongpt2,
    make_gpt2_tokenizer,
    make_gpt2_visiongpt2_dir,
    make_hf_cache,
    make_tiny_hf_dir,
    save_tokenizer,
)

IMAGE = Image.new("RGB", (40, 40), (90, 120, 200))
END_ID = 356  # the GPT-2-shaped tokenizer's <|endoftext|>: its last id, as GPT-2's is 50256
AT_LEAST_FOUR = DecodingConfig(min_new_tokens=4, max_new_tokens=8)  # random weights favour the end token at once


@pytest.fixture
def empty_hf_home(tmp_path, monkeypatch):
    """No Hugging Face cache and no hub: whatever loads, loads from the folder given."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hf-home"


def seed_dir(tmp_path, state=None, layout="save_pretrained_v4"):
    """A folder with captioner.pt (seed layout) and GPT-2's tokenizer files beside it."""
    path = make_gpt2_visiongpt2_dir(tmp_path, layout)
    if state is not None:
        torch.save(state, path)
    return path


def test_loads_seed_checkpoint_and_infers_config(tmp_path, empty_hf_home):
    path = seed_dir(tmp_path)
    model = load_captioner(str(path))
    c = model.config
    assert (c.depth, c.embed_dim, c.num_heads, c.vocab_size, c.seq_len, c.image_size, c.patch_size) == (2, 32, 1, 357, 40, 32, 8)
    assert (model.bos_token_id, model.eos_token_id, model.pad_token_id) == (END_ID, END_ID, END_ID)
    assert model.info.notes == [
        "1 head assumed (head size 64): put a config.json with num_heads beside the weights if that is wrong"
    ]
    # Heads are not in the shapes: head size 64 is assumed unless a config.json says otherwise.
    (tmp_path / "config.json").write_text('{"num_heads": 4}')
    model = load_captioner(str(path))
    assert model.config.num_heads == 4 and not model.info.notes
    ref = make_gpt2_tiny_visiongpt2()
    pixels = model.preprocess([IMAGE])
    ids = torch.tensor([[END_ID, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(model.model(pixels, ids), ref(pixels, ids))
    assert len(caption_image(model, IMAGE, [AT_LEAST_FOUR])[0].best.token_ids) >= 4


@pytest.mark.parametrize("layout", TOKENIZER_LAYOUTS)
def test_each_tokenizer_layout_loads_and_captions(tmp_path, monkeypatch, layout):
    tokenizer = make_gpt2_tokenizer()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    if layout == "hf_cache":  # nothing beside the weights: GPT-2's tokenizer from the local cache
        make_gpt2_cache(tmp_path / "hf-home", tokenizer)
    path = make_gpt2_visiongpt2_dir(tmp_path / "model", layout, tokenizer=tokenizer)
    model = load_captioner(str(path))
    assert (model.bos_token_id, model.eos_token_id) == (END_ID, END_ID)
    assert model.tokenizer.decode(model.tokenizer.encode(" the cat sat")) == " the cat sat"
    caption = caption_image(model, IMAGE, [AT_LEAST_FOUR])[0].best
    assert len(caption.token_ids) >= 4 and END_ID not in caption.token_ids[:-1]
    assert caption.text == tokenizer.decode(caption.token_ids, skip_special_tokens=True).strip()
    assert END_OF_TEXT not in caption.text


def test_end_token_rule_on_gpt2_shaped_tokenizers():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    gpt2 = make_gpt2_tokenizer()
    assert gpt2.unk_token_id == gpt2.bos_token_id == gpt2.eos_token_id == END_ID and gpt2.pad_token_id is None
    assert end_of_text_id(gpt2) == END_ID  # the unknown token being the end token is GPT-2's normal case

    def word_level(special: dict, words=("a", "b")):
        vocab = {w: i for i, w in enumerate([*words, *special.values()])}
        return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token=words[0])), **special)

    assert end_of_text_id(word_level({"eos_token": "</s>", "bos_token": "<s>"})) == 2  # no <|endoftext|>: eos
    assert end_of_text_id(word_level({"bos_token": "<s>"})) == 2  # no eos: bos
    assert end_of_text_id(word_level({"eos_token": "</s>"}, words=("a", END_OF_TEXT))) == 1  # its text first
    with pytest.raises(ModelLoadError, match="no end-of-text token"):
        end_of_text_id(word_level({}))


def test_loads_directory_and_safetensors(tmp_path, empty_hf_home):
    model = make_gpt2_tiny_visiongpt2()
    state = {k: v.clone() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text('{"architecture": "VisionGPT2", "num_heads": 4}')
    save_tokenizer(make_gpt2_tokenizer(), tmp_path, "save_pretrained")
    loaded = load_captioner(str(tmp_path))
    assert loaded.model.lm_head.weight is loaded.model.transformer.wte.weight
    assert loaded.config.num_heads == 4
    bf16 = load_captioner(str(tmp_path), dtype="bfloat16")
    assert bf16.model.lm_head.weight.dtype == torch.bfloat16
    assert caption_image(bf16, IMAGE, [AT_LEAST_FOUR])[0].best.token_ids


def test_a_hugging_face_folder_loads_with_its_grid_and_attention(tiny_hf_dir):
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


def test_every_from_pretrained_is_told_not_to_run_remote_code(tiny_hf_dir, monkeypatch):
    import transformers

    calls = []
    for cls in (transformers.VisionEncoderDecoderModel, transformers.AutoImageProcessor, transformers.AutoTokenizer):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            calls.append((klass.__name__, kwargs.get("trust_remote_code", "not passed")))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    load_captioner(str(tiny_hf_dir))
    assert {name for name, _ in calls} == {"VisionEncoderDecoderModel", "AutoImageProcessor", "AutoTokenizer"}
    assert all(value is False for _, value in calls), calls


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
    state = make_gpt2_tiny_visiongpt2().seed_state_dict()
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
    state = make_gpt2_tiny_visiongpt2().seed_state_dict()
    path = seed_dir(tmp_path, {"model": state, "step": torch.tensor(3)})
    assert load_captioner(str(path)).config.depth == 2


def test_missing_paths_devices_and_directories(tmp_path):
    with pytest.raises(ModelLoadError, match="No such file or directory"):
        load_captioner(str(tmp_path / "nope.pt"))
    with pytest.raises(ModelLoadError, match="^/dev/zero is a character device, not a model file or folder.$"):
        load_captioner("/dev/zero")
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


def test_no_tokenizer_while_offline_says_where_it_looked(tmp_path, empty_hf_home):
    torch.save(make_gpt2_tiny_visiongpt2().seed_state_dict(), tmp_path / "captioner.pt")
    with pytest.raises(ModelLoadError) as caught:
        load_captioner(str(tmp_path / "captioner.pt"))
    message = str(caught.value)
    assert "No tokenizer beside the checkpoint" in message and "tokenizer.json" in message
    assert "GPT-2's tokenizer is neither in the local Hugging Face cache nor reachable" in message
    assert "save_pretrained(folder)" in message and "\n" not in message


def test_hub_id_while_offline_is_one_message(tmp_path, empty_hf_home):
    with pytest.raises(ModelLoadError) as caught:
        load_captioner("nlpconnect/vit-gpt2-image-captioning")
    message = str(caught.value)
    assert message == (
        f"nlpconnect/vit-gpt2-image-captioning is not in the local Hugging Face cache ({empty_hf_home / 'hub'}), "
        "and HF_HUB_OFFLINE is set."
    )


def test_hub_model_from_the_local_cache(tmp_path, empty_hf_home):
    """A hub id found in the cache (files as symlinks into blobs/, as huggingface_hub stores them) loads offline."""
    make_hf_cache(empty_hf_home, loading.DEFAULT_HUB_MODEL, make_tiny_hf_dir(tmp_path / "files"))
    model = load_captioner(loading.DEFAULT_HUB_MODEL)
    assert model.info.name == loading.DEFAULT_HUB_MODEL and model.info.family == "hf-vision-encoder-decoder"
    assert caption_image(model, IMAGE)[0].best.token_ids
    assert resolve_default_model() == (loading.DEFAULT_HUB_MODEL, "found in the local Hugging Face cache", False)


# -- the default model --------------------------------------------------------------------------
@pytest.fixture
def elsewhere(tmp_path, monkeypatch, empty_hf_home):
    """A working directory and a project folder with no model in them, no CAPTIONER_MODEL, no hub."""
    monkeypatch.delenv("CAPTIONER_MODEL", raising=False)
    (tmp_path / "cwd").mkdir()
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setattr(loading.default, "PROJECT_DIR", tmp_path / "project")
    return tmp_path


def test_default_is_builtin_when_nothing_else_is_found(elsewhere):
    spec, reason, fell_back = resolve_default_model(timeout=0.5)
    assert spec == "builtin" and fell_back and "no captioner.pt here" in reason and "hub did not answer" in reason


def test_default_follows_captioner_model(elsewhere, monkeypatch):
    seed_dir(elsewhere / "cwd")  # CAPTIONER_MODEL wins over a captioner.pt in the working directory
    monkeypatch.setenv("CAPTIONER_MODEL", str(elsewhere))
    assert resolve_default_model() == (str(elsewhere), "named by the CAPTIONER_MODEL environment variable", False)


def test_default_finds_captioner_pt_in_the_working_directory(elsewhere):
    path = seed_dir(elsewhere / "cwd")
    spec, reason, fell_back = resolve_default_model()
    assert (spec, fell_back) == (str(path), False)
    assert reason == f"captioner.pt found in the current directory ({elsewhere / 'cwd'})"
    model = load_default_captioner()
    assert model.info.source == str(path) and model.info.reason == reason and not model.info.fell_back


def test_default_finds_safetensors_and_config_in_the_project_folder(elsewhere):
    model = make_gpt2_tiny_visiongpt2()
    save_file(
        {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}, str(elsewhere / "project" / "model.safetensors")
    )
    (elsewhere / "project" / "config.json").write_text('{"architecture": "VisionGPT2", "num_heads": 4}')
    save_tokenizer(make_gpt2_tokenizer(), elsewhere / "project", "tokenizer.json")
    spec, reason, _ = resolve_default_model()
    assert spec == str(elsewhere / "project") and "model.safetensors and config.json found in the project folder" in reason
    assert load_default_captioner().config.num_heads == 4


@pytest.mark.skipif(not (loading.BUILTIN_DIR / "config.json").exists(), reason="the built-in model is not shipped")
def test_default_that_fails_falls_back_with_one_message(elsewhere):
    (elsewhere / "cwd" / "captioner.pt").write_text("not a checkpoint")
    model = load_default_captioner()
    assert model.info.name == "builtin" and model.info.fell_back
    assert model.info.reason.startswith(
        f"{elsewhere / 'cwd' / 'captioner.pt'} could not be loaded, so the built-in model is used: "
    )
    assert model.info.reason.count("could not be loaded") == 1


# -- generation defaults and the model's own limits --------------------------------------------
def save_generation_config(folder, **values):
    from transformers import GenerationConfig

    GenerationConfig(**values).save_pretrained(str(folder))


def test_generation_defaults_of_a_visiongpt2_folder(tmp_path, empty_hf_home):
    path = seed_dir(tmp_path)
    assert load_captioner(str(path)).default_decoding.strategy == "greedy"
    save_generation_config(tmp_path, max_length=16, num_beams=4, no_repeat_ngram_size=2)
    d = load_captioner(str(path)).default_decoding
    assert (d.strategy, d.num_beams, d.max_new_tokens, d.no_repeat_ngram_size) == ("beam", 4, 15, 2)
    save_generation_config(tmp_path, max_new_tokens=500)  # more than the model's 40 positions hold
    assert load_captioner(str(path)).default_decoding.max_new_tokens == 39


def test_generation_defaults_of_a_hugging_face_folder(tmp_path):
    folder = make_tiny_hf_dir(tmp_path)
    assert load_captioner(str(folder)).default_decoding.strategy == "greedy"
    save_generation_config(folder, max_length=16, num_beams=4, decoder_start_token_id=0, eos_token_id=0, pad_token_id=0)
    d = load_captioner(str(folder)).default_decoding
    assert (d.strategy, d.num_beams, d.max_new_tokens) == ("beam", 4, 15)


def test_default_decoding_fits_the_model(tmp_path, empty_hf_home):
    model = load_captioner(str(seed_dir(tmp_path)))
    assert model.max_new_tokens_limit == 39 and model.default_decoding.max_new_tokens <= 39


def test_infer_full_size_config():
    with torch.device("meta"):
        from captioner.config import VisionGPT2Config
        from captioner.models.visiongpt2 import VisionGPT2

        state = VisionGPT2(VisionGPT2Config()).seed_state_dict()
    config = infer_visiongpt2_config(state)
    assert (config.depth, config.embed_dim, config.num_heads, config.mlp_ratio, config.image_size, config.patch_size) == (
        12,
        768,
        12,
        4,
        224,
        16,
    )
    assert (config.vocab_size, config.seq_len) == (50257, 1024)


def test_a_config_json_copied_from_the_builtin_model_must_agree_with_the_weights(tmp_path, empty_hf_home):
    path = seed_dir(tmp_path)
    builtin = (
        json.loads((loading.BUILTIN_DIR / "config.json").read_text())
        if (loading.BUILTIN_DIR / "config.json").exists()
        else {"depth": 3}
    )
    (tmp_path / "config.json").write_text(json.dumps(builtin))
    with pytest.raises(ModelLoadError, match=r"config\.json: \w+ is \d+, but the weights hold \d+\."):
        load_captioner(str(path))
