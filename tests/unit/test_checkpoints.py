"""Checkpoints as training code saves them: DataParallel's `module.`, torch.compile's
`_orig_mod.`, nanoGPT's `{"model": ..., "optimizer": ...}`; and a tokenizer that is not the model's.

The fixtures are tiny VisionGPT2 models in the seed layout, saved the way each training setup saves
them: the state dict of a real `DataParallel` or `torch.compile` wrapper, beside a real optimizer's
state, with GPT-2's tokenizer files (tests/tiny_models.py) beside the weights.
"""

from __future__ import annotations

import io

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save_file

from captioner.config import DecodingConfig
from captioner.decoding import caption_image
from captioner.loading import ModelLoadError, load_captioner
from captioner.loading.checkpoints import TRAINING_PREFIXES, WRAPPER_KEYS, unwrap_training_save
from captioner.loading.tokenizers import vocabulary_padding
from tests.tiny_models import make_gpt2_tiny_visiongpt2, make_gpt2_tokenizer, make_tiny_visiongpt2, save_tokenizer

IMAGE = Image.new("RGB", (40, 40), (90, 120, 200))
FOUR_TOKENS = DecodingConfig(min_new_tokens=4, max_new_tokens=6)


@pytest.fixture(scope="module")
def tiny():
    """A tiny VisionGPT2 with GPT-2's special tokens, and its GPT-2-shaped tokenizer."""
    tokenizer = make_gpt2_tokenizer()
    return make_gpt2_tiny_visiongpt2(tokenizer=tokenizer), tokenizer


@pytest.fixture(scope="module")
def plain_ids(tiny, tmp_path_factory):
    """The caption's ids from the plain seed-layout save: what every wrapped save must give too."""
    model, tokenizer = tiny
    folder = tmp_path_factory.mktemp("plain")
    torch.save(model.seed_state_dict(), folder / "captioner.pt")
    save_tokenizer(tokenizer, folder, "save_pretrained_v4")
    return caption_image(load_captioner(str(folder / "captioner.pt")), IMAGE, [FOUR_TOKENS])[0].best.token_ids


def save_beside_tokenizer(folder, obj, tokenizer, name="captioner.pt"):
    folder.mkdir(parents=True, exist_ok=True)
    (save_file if name.endswith(".safetensors") else torch.save)(obj, folder / name)
    save_tokenizer(tokenizer, folder, "save_pretrained_v4")
    return folder / name


def nanogpt_checkpoint(model: torch.nn.Module, weights: dict) -> dict:
    """What nanoGPT's train.py saves: the (compiled) model's weights, AdamW's state after a step, and more."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    return {
        "model": weights,
        "optimizer": optimizer.state_dict(),
        "model_args": {"n_layer": 2, "n_embd": 32},
        "iter_num": 500,
        "best_val_loss": torch.tensor(2.31),
        "config": {"batch_size": 12, "compile": True},
    }


def saves(model):
    """(name, object to save, prefixes stripped) for each way training code saves this model."""
    compiled = torch.compile(model)
    return [
        ("dataparallel", torch.nn.DataParallel(model).state_dict(), ["module."]),
        ("compile", compiled.state_dict(), ["_orig_mod."]),
        ("dataparallel of compile", torch.nn.DataParallel(compiled).state_dict(), ["module.", "_orig_mod."]),
        ("nanogpt", nanogpt_checkpoint(make_tiny_visiongpt2(), compiled.state_dict()), ["_orig_mod."]),
        ("lightning-like", {"state_dict": torch.nn.DataParallel(model).state_dict(), "epoch": 3}, ["module."]),
        (
            "lightning",
            {"state_dict": {"model." + k: v for k, v in model.state_dict().items()}, "epoch": 1, "global_step": 10},
            ["model."],
        ),  # a LightningModule with the network as self.model
    ]


def test_every_training_save_loads_as_the_plain_one(tiny, plain_ids, tmp_path):
    model, tokenizer = tiny
    for name, obj, prefixes in saves(model):
        path = save_beside_tokenizer(tmp_path / name.replace(" ", "-"), obj, tokenizer)
        loaded = load_captioner(str(path))
        for key, tensor in model.state_dict().items():
            assert torch.equal(loaded.model.state_dict()[key], tensor), (name, key)
        assert caption_image(loaded, IMAGE, [FOUR_TOKENS])[0].best.token_ids == plain_ids, name
        note = next(n for n in loaded.info.notes if n.startswith("captioner.pt: "))
        assert all(f"the prefix {p!r} ({TRAINING_PREFIXES[p]}) was stripped" in note for p in prefixes), (name, note)
        if name == "nanogpt":
            assert 'the checkpoint\'s "model" entry (left aside: optimizer, model_args, iter_num, best_val_loss, config)' in note


def test_a_compiled_submodule_and_a_safetensors_file_load(tiny, plain_ids, tmp_path):
    model, tokenizer = tiny
    state = {k.replace("transformer.", "transformer._orig_mod.", 1): v.clone() for k, v in model.seed_state_dict().items()}
    del state["lm_head.weight"]  # safetensors holds no shared tensors; the head is tied on load
    path = save_beside_tokenizer(tmp_path / "st", state, tokenizer, "model.safetensors")
    loaded = load_captioner(str(path))
    assert caption_image(loaded, IMAGE, [FOUR_TOKENS])[0].best.token_ids == plain_ids
    assert any("'_orig_mod.' (a submodule saved from torch.compile) was stripped from" in n for n in loaded.info.notes)


def test_a_plain_save_has_no_note(tiny, tmp_path):
    model, tokenizer = tiny
    loaded = load_captioner(str(save_beside_tokenizer(tmp_path, model.seed_state_dict(), tokenizer)))
    assert not [n for n in loaded.info.notes if n.startswith("captioner.pt")]


def test_what_cannot_be_read_one_way_is_refused_with_the_reason(tiny, tmp_path):
    model, tokenizer = tiny
    state = model.seed_state_dict()
    half = {(f"module.{k}" if i % 2 else k): v for i, (k, v) in enumerate(state.items())}
    cases = [
        (
            half,
            r"captioner.pt: \d+ of \d+ tensor names begin with 'module.' \(as DataParallel saves them\) and the others do not",
        ),
        ({"model": state, "state_dict": state}, r"holds several state dicts \(state_dict, model\)"),
        (
            {**state, "transformer._orig_mod.wte.weight": state["transformer.wte.weight"]},
            r"transformer.wte.weight would be named twice",
        ),
        ({"model": {"not": "tensors"}, "optimizer": {}}, r"holds no state dict"),
    ]
    for obj, message in cases:
        path = save_beside_tokenizer(tmp_path, obj, tokenizer)
        with pytest.raises(ModelLoadError, match=message) as e:
            load_captioner(str(path))
        assert "\n" not in str(e.value) and "not a VisionGPT2 checkpoint" not in str(e.value)


PREFIX_CHAINS = st.lists(st.sampled_from(sorted(TRAINING_PREFIXES)), max_size=3)
WRAPPERS = st.sampled_from([None, *WRAPPER_KEYS])
EXTRAS = st.dictionaries(
    st.sampled_from(["optimizer", "iter_num", "epoch", "config", "best_val_loss", "scaler"]),
    st.sampled_from([{}, 3, {"lr": 1e-4}, torch.tensor(1.5), [1, 2]]),
    max_size=3,
)


@settings(derandomize=True, deadline=None, max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefixes=PREFIX_CHAINS, wrapper=WRAPPERS, extras=EXTRAS)
def test_any_chain_of_prefixes_in_any_wrapper_comes_back_as_the_model_names_it(tiny, prefixes, wrapper, extras):
    model, _ = tiny
    state = model.seed_state_dict()
    chain = "".join(prefixes)
    saved = {chain + k: v for k, v in state.items()}
    obj = {**extras, wrapper: saved} if wrapper else saved
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    checkpoint = unwrap_training_save(torch.load(buffer, weights_only=True), "captioner.pt")
    assert list(checkpoint.state) == list(state)
    assert all(checkpoint.state[k].data_ptr() != 0 and torch.equal(checkpoint.state[k], v) for k, v in state.items())
    if not prefixes and not wrapper:
        assert checkpoint.notes == []
    else:
        (note,) = checkpoint.notes
        assert note.count("was stripped") == len(prefixes)
        assert (f'"{wrapper}" entry' in note) == bool(wrapper)


# -- the tokenizer beside the weights ------------------------------------------------------------
def word_tokenizer(n_words: int):
    """A word-level tokenizer of `n_words` words and <|endoftext|> (the built-in model's kind)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<|endoftext|>": 0, **{f"w{i}": i + 1 for i in range(n_words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", unk_token="<|endoftext|>")


def test_a_tokenizer_that_is_not_the_models_is_refused_naming_both_sizes(tmp_path):
    model = make_tiny_visiongpt2(vocab_size=38)
    for n_words in (4999, 9, 36):  # 5000 tokens, 10 tokens, 37 tokens for 38 ids
        folder = tmp_path / f"words-{n_words}"
        folder.mkdir()
        torch.save(model.seed_state_dict(), folder / "captioner.pt")
        word_tokenizer(n_words).save_pretrained(str(folder))
        with pytest.raises(ModelLoadError, match=f"has {n_words + 1} tokens but the model has 38 token ids") as e:
            load_captioner(str(folder / "captioner.pt"))
        assert "\n" not in str(e.value)


def test_a_vocabulary_padded_to_a_multiple_of_64_loads_with_a_note(tmp_path):
    tokenizer = make_gpt2_tokenizer()  # 357 tokens: padded to 384 as nanoGPT pads GPT-2's 50257 to 50304
    model = make_tiny_visiongpt2(vocab_size=384, bos_token_id=356, eos_token_id=356, pad_token_id=356)
    loaded = load_captioner(str(save_beside_tokenizer(tmp_path, model.seed_state_dict(), tokenizer)))
    assert "the model has 384 token ids and its tokenizer 357: ids 357 to 383 are padding" in " ".join(loaded.info.notes)
    assert caption_image(loaded, IMAGE, [FOUR_TOKENS])[0].best.token_ids


class Sized:
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n


@settings(derandomize=True, deadline=None, max_examples=300)
@given(tokens=st.integers(1, 200_000), ids=st.integers(1, 200_000))
def test_only_equal_or_padded_vocabularies_fit(tokens, ids, tmp_path_factory):
    padded = -(-tokens // 64) * 64
    if tokens == ids:
        assert vocabulary_padding(Sized(tokens), ids, "here") is None
    elif tokens < ids == padded:
        assert f"the model has {ids} token ids and its tokenizer {tokens}" in vocabulary_padding(Sized(tokens), ids, "here")
    else:
        with pytest.raises(ModelLoadError, match=f"has {tokens} tokens but the model has {ids} token ids"):
            vocabulary_padding(Sized(tokens), ids, "here")


def test_the_cli_says_what_was_stripped_and_refuses_a_foreign_tokenizer_in_one_line(tiny, tmp_path, capsys):
    from captioner.__main__ import main

    model, tokenizer = tiny
    IMAGE.save(tmp_path / "photo.png")
    path = save_beside_tokenizer(tmp_path / "dp", torch.nn.DataParallel(model).state_dict(), tokenizer)
    assert main([str(tmp_path / "photo.png"), "--model", str(path), "--max-new-tokens", "2"]) == 0
    assert (
        "note: captioner.pt: the prefix 'module.' (DataParallel) was stripped from every tensor name" in capsys.readouterr().err
    )
    folder = tmp_path / "foreign"
    folder.mkdir()
    torch.save(make_tiny_visiongpt2(vocab_size=38).seed_state_dict(), folder / "captioner.pt")
    word_tokenizer(4999).save_pretrained(str(folder))
    assert main([str(tmp_path / "photo.png"), "--model", str(folder / "captioner.pt")]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1
    assert out.err.startswith("error: The tokenizer in ") and "has 5000 tokens but the model has 38 token ids" in out.err
