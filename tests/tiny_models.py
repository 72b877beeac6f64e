"""Tiny random captioners for tests, built and saved without any network access."""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = [f"w{i}" for i in range(60)]


def make_word_tokenizer():
    """A word-level tokenizer whose id 0 is <|endoftext|> (start = end = pad, like GPT-2's 50256)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast

    vocab = {"<|endoftext|>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>", unk_token="<unk>"
    )


def tiny_visiongpt2_config(**overrides):
    from captioner.config import VisionGPT2Config

    base = dict(
        vocab_size=len(WORDS) + 2,
        embed_dim=32,
        num_heads=4,
        seq_len=40,
        depth=2,
        mlp_ratio=4,
        image_size=32,
        patch_size=8,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    base.update(overrides)
    return VisionGPT2Config(**base)


def make_tiny_visiongpt2(seed: int = 0, **overrides):
    from captioner.models.visiongpt2 import VisionGPT2

    torch.manual_seed(seed)
    model = VisionGPT2(tiny_visiongpt2_config(**overrides)).eval()
    # Larger random weights than the init so that distributions are peaked and not near-uniform.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(8.0)
    return model


def make_tiny_visiongpt2_dir(folder: Path, seed: int = 0) -> Path:
    """captioner.pt in the seed layout (masks included, lm_head tied) + a tokenizer beside it."""
    model = make_tiny_visiongpt2(seed)
    torch.save(model.seed_state_dict(), folder / "captioner.pt")
    make_word_tokenizer().save_pretrained(str(folder))
    return folder


def make_tiny_hf_model(seed: int = 0):
    from transformers import GPT2Config, ViTConfig, VisionEncoderDecoderConfig, VisionEncoderDecoderModel

    torch.manual_seed(seed)
    enc = ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48)
    dec = GPT2Config(
        vocab_size=len(WORDS) + 2,
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
        add_cross_attention=True,
        is_decoder=True,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    config.decoder_start_token_id = 0
    config.pad_token_id = 0
    config.eos_token_id = 0
    model = VisionEncoderDecoderModel(config=config).eval()
    with torch.no_grad():
        for name, p in model.decoder.named_parameters():
            if p.dim() >= 2:
                p.mul_(12.0)
    model.generation_config.decoder_start_token_id = 0
    model.generation_config.eos_token_id = 0
    model.generation_config.pad_token_id = 0
    model.generation_config.bos_token_id = 0
    return model


def make_tiny_hf_dir(folder: Path, seed: int = 0) -> Path:
    from transformers import ViTImageProcessor

    model = make_tiny_hf_model(seed)
    model.save_pretrained(str(folder))
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(str(folder))
    make_word_tokenizer().save_pretrained(str(folder))
    return folder


# -- GPT-2's tokenizer as people have it ----------------------------------------------------------
# GPT-2's tokenizer: byte-level BPE, unk = bos = eos = <|endoftext|> as the last id (50256 in the real
# one), no pad token. These fixtures build one the same way, small or at GPT-2's full 50257 tokens, and
# save it in each layout a user may have beside a checkpoint.
END_OF_TEXT = "<|endoftext|>"
TOKENIZER_LAYOUTS = ("tokenizer.json", "save_pretrained", "save_pretrained_v4", "hf_cache")


def make_gpt2_tokenizer(num_merges: int = 100):
    """A GPT2TokenizerFast shaped like GPT-2's: byte-level BPE over the 256 byte symbols plus
    `num_merges` merges, <|endoftext|> the last id and unk = bos = eos, no pad (50000 merges: GPT-2's size)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2TokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())  # 256 symbols, one per byte
    vocab = {symbol: i for i, symbol in enumerate(alphabet)}
    # Common pairs first ("Ġa" is " a"), then every other pair, so that small vocabularies merge real text.
    letters = ["Ġ", *"etaoinshrdlucmfwypvbgkjqxz"]
    pairs = [(a, b) for a in letters for b in letters[1:]] + [(a, b) for a in alphabet for b in alphabet]
    merges = []
    for a, b in pairs:
        if len(merges) == num_merges:
            break
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
            merges.append((a, b))
    vocab[END_OF_TEXT] = len(vocab)
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([END_OF_TEXT])
    return GPT2TokenizerFast(
        tokenizer_object=tok, unk_token=END_OF_TEXT, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, model_max_length=1024
    )


def save_tokenizer(tokenizer, folder: Path, layout: str) -> Path:
    """Write `tokenizer` into `folder` as one of TOKENIZER_LAYOUTS (hf_cache: nothing in the folder)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    if layout == "tokenizer.json":
        tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
    elif layout == "save_pretrained":  # today's transformers: tokenizer_config.json + tokenizer.json
        tokenizer.save_pretrained(str(folder))
    elif layout == "save_pretrained_v4":  # what transformers 4.x wrote, as the original training code ran
        tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
        tokenizer.backend_tokenizer.model.save(str(folder))  # vocab.json, merges.txt
        end_id = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
        special = {"bos_token": END_OF_TEXT, "eos_token": END_OF_TEXT, "unk_token": END_OF_TEXT}
        (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
        added = {
            str(end_id): {
                "content": END_OF_TEXT,
                "lstrip": False,
                "normalized": True,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
        }
        config = {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": added,
            **special,
            "clean_up_tokenization_spaces": True,
            "errors": "replace",
            "model_max_length": 1024,
            "pad_token": None,
            "tokenizer_class": "GPT2Tokenizer",
        }
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    elif layout != "hf_cache":
        raise ValueError(f"unknown tokenizer layout {layout!r}")
    return folder


def make_hf_cache(hf_home: Path, repo_id: str, files: Path, revision: str = "607a30d783dfa663caf39e06633721c8d4cfcd7e") -> Path:
    """The files of folder `files` as `repo_id` in a Hugging Face hub cache under `hf_home`, laid out as
    huggingface_hub lays it out: hub/models--<org>--<name>/blobs/<sha256>, snapshots/<revision>/<file>
    -> ../../blobs/<sha256> (symlinks), refs/main holding the revision. Returns the snapshot folder."""
    import hashlib
    import os

    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    for folder in (repo / "blobs", snapshot, repo / "refs"):
        folder.mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    for file in sorted(files.iterdir()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / file.name)
    return snapshot


def make_gpt2_cache(hf_home: Path, tokenizer) -> Path:
    """GPT-2's tokenizer in a hub cache, with the files the hub's gpt2 has for it: config.json,
    tokenizer_config.json ({"model_max_length": 1024}), tokenizer.json, vocab.json, merges.txt."""
    import json
    import tempfile

    from transformers import GPT2Config

    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp)
        tokenizer.backend_tokenizer.save(str(files / "tokenizer.json"))
        tokenizer.backend_tokenizer.model.save(str(files))
        (files / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 1024}))
        end_id = len(tokenizer) - 1
        GPT2Config(vocab_size=len(tokenizer), bos_token_id=end_id, eos_token_id=end_id).to_json_file(str(files / "config.json"))
        return make_hf_cache(hf_home, "gpt2", files)


def make_gpt2_tiny_visiongpt2(seed: int = 0, tokenizer=None):
    """A tiny VisionGPT2 whose vocabulary is the GPT-2-shaped tokenizer's, start = end = its last id."""
    tokenizer = tokenizer or make_gpt2_tokenizer()
    end_id = len(tokenizer) - 1
    return make_tiny_visiongpt2(seed, vocab_size=len(tokenizer), bos_token_id=end_id, eos_token_id=end_id, pad_token_id=end_id)


def make_gpt2_visiongpt2_dir(folder: Path, layout: str = "save_pretrained_v4", seed: int = 0, tokenizer=None) -> Path:
    """captioner.pt in the seed layout with GPT-2's special tokens (start = end = the last id), and its
    tokenizer saved beside it as `layout` (hf_cache: none beside it; see make_gpt2_cache)."""
    tokenizer = tokenizer or make_gpt2_tokenizer()
    model = make_gpt2_tiny_visiongpt2(seed, tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.seed_state_dict(), folder / "captioner.pt")
    save_tokenizer(tokenizer, folder, layout)
    return folder / "captioner.pt"


# -- BLIP and GIT ---------------------------------------------------------------------------------
# Both families use BERT's WordPiece tokenizer ([PAD] 0, [CLS], [SEP], ...; BLIP adds [DEC] as its bos).
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TINY_VISION = dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, image_size=32, patch_size=8)
TINY_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)


def make_bert_tokenizer(extra_bos: str | None = None):
    """A BERT WordPiece tokenizer over BERT's special tokens and WORDS (lower case), as BLIP's and GIT's are;
    with `extra_bos`, that token is added as the bos token (BLIP's [DEC])."""
    from transformers import BertTokenizerFast

    vocab = {t: i for i, t in enumerate([*BERT_SPECIALS, *WORDS])}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    if extra_bos:
        tokenizer.add_special_tokens({"bos_token": extra_bos})
    return tokenizer


def _peaked(model, skip: str = "") -> None:
    """Larger random weights than the init, so that distributions are peaked and images matter."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2 and not (skip and skip in name):
                p.mul_(12.0)


def make_tiny_blip(seed: int = 0, tokenizer=None):
    from transformers import BlipConfig, BlipForConditionalGeneration

    tokenizer = tokenizer or make_bert_tokenizer("[DEC]")
    text = dict(
        TINY_TEXT,
        vocab_size=len(tokenizer),
        encoder_hidden_size=TINY_VISION["hidden_size"],
        bos_token_id=tokenizer.bos_token_id,
        sep_token_id=tokenizer.sep_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = dict(TINY_VISION, initializer_range=0.02)  # BLIP's default (1e-10) makes every image look alike
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=16)).eval()
    _peaked(model)
    return model


def make_tiny_git(seed: int = 0, tokenizer=None):
    from transformers import GitConfig, GitForCausalLM

    tokenizer = tokenizer or make_bert_tokenizer()
    config = GitConfig(
        vision_config=TINY_VISION,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TINY_TEXT,
    )
    torch.manual_seed(seed)
    model = GitForCausalLM(config).eval()
    _peaked(model, skip="image_encoder")
    return model


def make_tiny_blip_dir(folder: Path, seed: int = 0, layout: str = "hub") -> Path:
    """A BLIP captioning folder. layout "hub": image processor and tokenizer saved on their own (the
    files Salesforce's hub repos have: preprocessor_config.json, tokenizer*.json); "processor":
    BlipProcessor.save_pretrained (today's transformers: processor_config.json holds the image processor)."""
    from transformers import BlipImageProcessor, BlipProcessor

    tokenizer = make_bert_tokenizer("[DEC]")
    make_tiny_blip(seed, tokenizer).save_pretrained(str(folder))
    _save_processor(folder, BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer, BlipProcessor, layout)
    return folder


def make_tiny_git_dir(folder: Path, seed: int = 0, layout: str = "hub") -> Path:
    """A GIT folder (microsoft/git-base's files; layout as for make_tiny_blip_dir)."""
    from transformers import CLIPImageProcessor, GitProcessor

    tokenizer = make_bert_tokenizer()
    make_tiny_git(seed, tokenizer).save_pretrained(str(folder))
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    _save_processor(folder, processor, tokenizer, GitProcessor, layout)
    return folder


def _save_processor(folder: Path, image_processor, tokenizer, processor_class, layout: str) -> None:
    if layout == "processor":
        processor_class(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(folder))
    elif layout == "hub":
        image_processor.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))
    else:
        raise ValueError(f"unknown processor layout {layout!r}")
