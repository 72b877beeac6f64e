"""VisionGPT2 checkpoints that must be refused: paths that are not files, bad config.json, tokenizers, weights."""

from __future__ import annotations

import os
from pathlib import Path

from tests.corpus.case import ModelCase
from tests.corpus.model_files import (
    add_auto_map,
    cast_to,
    json_text,
    nested_json,
    poison,
    seed,
    seed_edited,
    seed_with,
    set_key,
    sparse_file,
    word_tokenizer_without_end,
    zeros,
)
from tests.corpus.special_paths import make_fifo, make_symlink_to

_NEEDS_TOKENIZER_JSON = "tokenizer.json"
SEED_MODEL_CASES: list[ModelCase] = [
    # Paths that are not model files.
    ModelCase(
        "checkpoint_fifo",
        "captioner.pt is a FIFO: refused from its metadata, never opened",
        lambda f: (make_fifo(f / "captioner.pt"), f / "captioner.pt")[1],
        "FIFO",
    ),
    ModelCase("dev_zero", "--model /dev/zero: a device, not 'No such file'", lambda f: Path("/dev/zero"), "character device"),
    ModelCase(
        "checkpoint_link_to_dev_zero",
        "captioner.pt is a symlink to /dev/zero",
        lambda f: (os.symlink("/dev/zero", f / "captioner.pt"), f / "captioner.pt")[1],
        "character device",
    ),
    ModelCase(
        "checkpoint_is_folder",
        "a folder whose captioner.pt is itself a folder",
        lambda f: ((f / "captioner.pt").mkdir(), f)[1],
        "a folder",
    ),
    ModelCase(
        "checkpoint_over_cap",
        "a 9 GB captioner.pt (a sparse file): over the size cap, refused unread",
        lambda f: (sparse_file(9_000_000_000)(f / "captioner.pt"), f / "captioner.pt")[1],
        "too large",
    ),
    # config.json beside the weights.
    ModelCase("config_fifo", "config.json is a FIFO", seed_with("config.json", special=make_fifo), "FIFO"),
    ModelCase(
        "config_link_to_dev_zero",
        "config.json is a symlink to /dev/zero",
        seed_with("config.json", special=make_symlink_to("/dev/zero")),
        "character device",
    ),
    ModelCase(
        "config_link_loop",
        "config.json is a symlink to itself",
        seed_with("config.json", special=make_symlink_to("config.json")),
        "could not be read",
    ),
    ModelCase("config_too_large", "a 2 MB config.json", seed_with("config.json", " " * 2_000_000 + "{}"), "too large"),
    ModelCase(
        "config_nested_100000",
        "config.json nested 100,000 levels deep",
        seed_with("config.json", nested_json(100_000)),
        "nested too deeply",
    ),
    ModelCase(
        "config_nested_40",
        "config.json nested 40 levels deep",
        seed_with("config.json", '{"a": ' + nested_json(39) + "}"),
        "nested too deeply",
    ),
    ModelCase("config_nan", "config.json with a bare NaN", seed_with("config.json", '{"num_heads": NaN}'), "not valid JSON"),
    ModelCase(
        "config_not_object", "config.json holding a list", seed_with("config.json", "[1, 2]"), "does not hold a JSON object"
    ),
    ModelCase(
        "config_depth_10000",
        "config.json says depth 10000",
        seed_with("config.json", json_text({"depth": 10000})),
        "depth must be a whole number from 1 to 256",
    ),
    ModelCase(
        "config_depth_disagrees",
        "config.json says depth 3, the weights hold 2 layers",
        seed_with("config.json", json_text({"depth": 3})),
        "depth is 3, but the weights hold 2",
    ),
    ModelCase(
        "config_seq_len_disagrees",
        "config.json says seq_len 1024, the weights hold 40 positions",
        seed_with("config.json", json_text({"seq_len": 1024})),
        "seq_len is 1024, but the weights hold 40",
    ),
    *[
        ModelCase(
            f"config_heads_{label}",
            f"config.json num_heads {value!r}",
            seed_with("config.json", json_text({"num_heads": value})),
            "num_heads must be a whole number",
        )
        for label, value in [("string", "4"), ("float", 4.0), ("bool", True), ("zero", 0), ("negative", -4), ("list", [4])]
    ],
    ModelCase(
        "config_heads_not_dividing",
        "config.json num_heads 5 for a width of 32",
        seed_with("config.json", json_text({"num_heads": 5})),
        "num_heads (5) must divide the width the weights hold (32)",
    ),
    ModelCase(
        "config_mean_short",
        "image_mean of one number",
        seed_with("config.json", json_text({"image_mean": [0.5]})),
        "image_mean must be a list of 3 numbers",
    ),
    ModelCase(
        "config_std_zero",
        "image_std of zeros",
        seed_with("config.json", json_text({"image_std": [0, 0, 0]})),
        "image_std must be",
    ),
    ModelCase(
        "config_dropout_string",
        "a dropout given as a string",
        seed_with("config.json", json_text({"attention_dropout": "0.1"})),
        "attention_dropout must be a number",
    ),
    ModelCase(
        "config_image_size_huge",
        "image_size 15000",
        seed_with("config.json", json_text({"image_size": 15000})),
        "image_size must be a whole number from 1 to 4096",
    ),
    ModelCase(
        "generation_config_type",
        'generation_config.json num_beams "4"',
        seed_with("generation_config.json", json_text({"num_beams": "4"})),
        "generation_config.json: num_beams must be",
    ),
    ModelCase(
        "generation_config_temperature_zero",
        "generation_config.json sampling at temperature 0",
        seed_with("generation_config.json", json_text({"do_sample": True, "temperature": 0})),
        "temperature must be",
    ),
    # Tokenizers.
    ModelCase(
        "tokenizer_json_fifo",
        "tokenizer.json is a FIFO",
        seed_with(_NEEDS_TOKENIZER_JSON, special=make_fifo, layout="tokenizer.json"),
        "FIFO",
    ),
    ModelCase(
        "tokenizer_json_garbage",
        "tokenizer.json is not JSON",
        seed_with(_NEEDS_TOKENIZER_JSON, "{not json", layout="tokenizer.json"),
        "could not be read",
    ),
    ModelCase(
        "tokenizer_auto_map",
        "tokenizer_config.json names tokenization_evil.py in auto_map",
        lambda f: (
            seed(f),
            add_auto_map(f, "tokenizer_config.json", "tokenization_evil", "EvilTokenizer", "AutoTokenizer"),
            f / "captioner.pt",
        )[2],
        "tokenization_evil.py",
    ),
    ModelCase(
        "tokenizer_without_end_token",
        "a tokenizer with no <|endoftext|>, eos or bos token",
        word_tokenizer_without_end,
        "no end-of-text token",
    ),
    # Weights.
    ModelCase(
        "key_h_99999",
        "one extra key transformer.h.99999.x: not 100,000 layers",
        seed_edited(set_key("transformer.h.99999.x", lambda _: zeros(3))),
        "decoder layer 99999 has weights but layers 2 to 99998 have none",
    ),
    ModelCase(
        "key_blocks_50",
        "one extra key blocks.50.x",
        seed_edited(set_key("blocks.50.x", lambda _: zeros(3))),
        "encoder layer 50 has weights",
    ),
    *[
        ModelCase(
            f"weights_{kind}",
            f"a weight of {kind} values",
            seed_edited(set_key("transformer.h.0.ln_1.weight", cast_to(kind))),
            message,
        )
        for kind, message in [
            ("int32", "int32 values"),
            ("bool", "bool values"),
            ("complex64", "complex64 values"),
            ("int8", "int8 values"),
            ("sparse", "must be dense"),
        ]
    ],
    ModelCase(
        "weights_nan",
        "a NaN in a decoder weight",
        seed_edited(set_key("transformer.h.1.mlp.c_fc.weight", poison(float("nan")))),
        "NaN or infinite values, first in transformer.h.1.mlp.c_fc.weight",
    ),
    ModelCase(
        "weights_inf",
        "an infinity in an encoder weight",
        seed_edited(set_key("blocks.0.attn.qkv.weight", poison(float("inf")))),
        "NaN or infinite values, first in blocks.0.attn.qkv.weight",
    ),
    ModelCase(
        "wte_1d",
        "transformer.wte.weight of one dimension",
        seed_edited(set_key("transformer.wte.weight", lambda t: t[0])),
        "Shapes fit no VisionGPT2 config",
    ),
    ModelCase(
        "pos_embed_4d",
        "pos_embed of four dimensions",
        seed_edited(set_key("pos_embed", lambda t: t[None])),
        "Shapes fit no VisionGPT2 config",
    ),
    ModelCase(
        "mask_wrong_size",
        "an attn.mask buffer of the wrong size",
        seed_edited(set_key("transformer.h.0.attn.mask", lambda _: zeros((1, 1, 8, 8)))),
        "wrong shapes: transformer.h.0.attn.mask",
    ),
]
