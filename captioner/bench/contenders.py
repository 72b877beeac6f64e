"""The models the benchmark runs (full size, random weights, built offline) and the ways it runs them.

- VisionGPT2 at the seed checkpoint's config, saved as a seed-layout `captioner.pt` (429 keys, the
  `attn.mask` buffers, wte and lm_head tied) and loaded through `load_captioner`, as a user's file is;
- transformers' `VisionEncoderDecoderModel` with ViT-B/16 and GPT-2 124M configs.

Every caption is exactly NEW_TOKENS tokens (min_new_tokens = max_new_tokens), so that each contender
does the same work: this project's engine, the model's own `generate` on the same weights, and the
plain no-cache loop of the original code (VisionGPT2.generate, greedy only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NEW_TOKENS = 16
VOCAB_SIZE = 50257  # GPT-2's


def word_tokenizer(vocab_size: int = VOCAB_SIZE):
    """A word-level tokenizer as large as GPT-2's (no download needed), with GPT-2's special tokens:
    id vocab_size-1 = <|endoftext|>, which is also its unknown, start, end and padding token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(vocab_size - 1)}
    vocab["<|endoftext|>"] = vocab_size - 1
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )


def save_seed_checkpoint(folder: Path, tokenizer, seed: int = 0) -> int:
    """A full-size VisionGPT2 with random weights as a user holds one: `captioner.pt` in the seed layout
    (fp32, masks included, head tied) and a tokenizer beside it. Returns its number of parameters."""
    import torch

    from captioner.config import VisionGPT2Config
    from captioner.models.visiongpt2 import VisionGPT2

    torch.manual_seed(seed)
    model = VisionGPT2(VisionGPT2Config())
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.seed_state_dict(), folder / "captioner.pt")
    tokenizer.save_pretrained(str(folder))
    return model.num_parameters()


def hf_config():
    from transformers import GPT2Config, VisionEncoderDecoderConfig, ViTConfig

    enc = ViTConfig()  # ViT-B/16, 224 px
    dec = GPT2Config(add_cross_attention=True, is_decoder=True)  # GPT-2 124M
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    config.decoder_start_token_id = config.pad_token_id = config.eos_token_id = VOCAB_SIZE - 1
    return config


def build_hf(seed: int = 0):
    """A VisionEncoderDecoderModel (ViT-B/16 + GPT-2 124M) with random weights, built from configs."""
    import torch
    from transformers import VisionEncoderDecoderModel

    torch.manual_seed(seed)
    model = VisionEncoderDecoderModel(config=hf_config()).eval()
    gen = model.generation_config
    gen.decoder_start_token_id = gen.bos_token_id = gen.eos_token_id = gen.pad_token_id = VOCAB_SIZE - 1
    return model


def hf_captioner(model, tokenizer):
    from transformers import ViTImageProcessor

    from captioner.models.hf import HFVisionEncoderDecoderCaptioner

    return HFVisionEncoderDecoderCaptioner(model, ViTImageProcessor(), tokenizer, source="hf-random")


def quantize_int8(captioner):
    """Dynamic int8 quantization of the Linear layers (int8 weights, fp32 activations), a copy."""
    import copy

    import torch

    q = copy.copy(captioner)
    q.model = torch.ao.quantization.quantize_dynamic(captioner.model, {torch.nn.Linear}, dtype=torch.qint8)
    return q


def torch_dtype(name: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16}[name]


# -- what one caption costs, analytically -------------------------------------------------------
def encoder_flops(embed_dim: int = 768, depth: int = 12, tokens: int = 197, mlp_ratio: int = 4, cross_kv: bool = True) -> float:
    """Multiply-adds x 2 of one image through a ViT-B/16-like encoder (+ the decoder's cross-attention keys/values)."""
    C, N = embed_dim, tokens
    per_block = 2 * N * C * 3 * C + 2 * N * C * C + 2 * 2 * N * C * mlp_ratio * C + 2 * 2 * N * N * C
    patch = 2 * (N - 1) * C * 3 * 16 * 16
    kv = 2 * 2 * N * C * C if cross_kv else 0
    return depth * (per_block + kv) + patch


def decoder_step_bytes(captioner) -> int:
    """Bytes of weights one decoding step reads: every decoder weight but the cross-attention K/V projections, + lm_head."""
    model = captioner.model
    if hasattr(model, "transformer") and hasattr(model, "blocks"):  # VisionGPT2
        named = model.named_parameters(remove_duplicate=False)
        image_kv = (".cross_attn.k.", ".cross_attn.v.")
    else:  # HF: decoder blocks without crossattention.c_attn (its K/V projection), + ln_f and lm_head
        named = model.decoder.named_parameters(remove_duplicate=False)
        image_kv = (".crossattention.c_attn.",)
    seen, total = set(), 0
    for name, p in named:
        read = (name.startswith("transformer.h.") and not any(k in name for k in image_kv)) or name.startswith(
            ("transformer.ln_f", "lm_head")
        )
        if read and p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel() * p.element_size()
    return total


# -- running them -------------------------------------------------------------------------------
def workloads() -> dict[str, list]:
    """Decoding configurations, each forced to exactly NEW_TOKENS new tokens."""
    from captioner.config import DecodingConfig

    base = DecodingConfig(min_new_tokens=NEW_TOKENS, max_new_tokens=NEW_TOKENS, output_attentions=False)
    greedy = base.with_(strategy="greedy", label="greedy")
    beam4 = base.with_(strategy="beam", num_beams=4, label="beam 4")
    top_k = base.with_(strategy="sample", top_k=50, seed=0, label="top-k 50")
    top_p = base.with_(strategy="sample", top_p=0.9, top_k=0, seed=0, label="top-p 0.9")
    return {
        "greedy": [greedy],
        "beam4": [beam4],
        "top_p": [top_p],
        "greedy+attn": [greedy.with_(output_attentions=True)],
        "compare": [greedy, beam4, top_k, top_p],
    }


GENERATE_KWARGS = {
    "greedy": dict(num_beams=1, do_sample=False),
    "beam4": dict(num_beams=4, do_sample=False, early_stopping=False, length_penalty=1.0),
    "top_p": dict(num_beams=1, do_sample=True, top_p=0.9, top_k=0),
}


def run_engine(captioner, pixels, configs) -> list:
    from captioner.decoding import EncodedImage, decode

    import torch

    with torch.inference_mode():
        memory = captioner.encode(pixels)
    return decode(captioner, EncodedImage(memory, {}), configs)


def run_generate(hf_model, pixels, kind: str):
    import torch

    torch.manual_seed(0)
    with torch.inference_mode():
        return hf_model.generate(
            pixel_values=pixels, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, **GENERATE_KWARGS[kind]
        )


def run_nocache(captioner, pixels) -> list[int]:
    """The original loop: the whole encoder and prefix again for every token (forced to NEW_TOKENS tokens)."""
    return captioner.model.generate(pixels, NEW_TOKENS, stop_at_eos=False)[0].tolist()


def with_threads(n: int, fn) -> Any:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)
