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
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
        pad_token="<|endoftext|>", unk_token="<unk>",
    )


def tiny_visiongpt2_config(**overrides):
    from captioner.config import VisionGPT2Config

    base = dict(vocab_size=len(WORDS) + 2, embed_dim=32, num_heads=4, seq_len=40, depth=2, mlp_ratio=4,
                image_size=32, patch_size=8, bos_token_id=0, eos_token_id=0, pad_token_id=0)
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
    enc = ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=48)
    dec = GPT2Config(vocab_size=len(WORDS) + 2, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                     bos_token_id=0, eos_token_id=0, pad_token_id=0, add_cross_attention=True, is_decoder=True)
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
