"""Hugging Face ViT-GPT2 folders that must be refused: configs, model code, tokenizers, weights, indexes."""

from __future__ import annotations


from tests.corpus.case import ModelCase
from tests.corpus.model_files import (
    add_auto_map,
    edit_json,
    edit_weights,
    hf_folder,
    index_escaping,
    poison,
    put,
    remove_file,
    set_decoder,
    set_encoder,
    set_key,
    zeros,
)
from tests.corpus.special_paths import make_fifo

HF_MODEL_CASES: list[ModelCase] = [
    # Hugging Face folders.
    ModelCase(
        "hf_n_layer_beyond_the_weights",
        "config.json decoder.n_layer 200, the weights hold 2",
        hf_folder(edit_json("config.json", set_decoder("n_layer", 200))),
        "decoder.n_layer is 200, but the weights hold 2 decoder layers",
    ),
    ModelCase(
        "hf_n_layer_huge",
        "config.json decoder.n_layer 100000",
        hf_folder(edit_json("config.json", set_decoder("n_layer", 100_000))),
        "decoder.n_layer must be a whole number from 1 to 256",
    ),
    ModelCase(
        "hf_n_layer_string",
        'config.json decoder.n_layer "2"',
        hf_folder(edit_json("config.json", set_decoder("n_layer", "2"))),
        "decoder.n_layer must be a whole number",
    ),
    ModelCase(
        "hf_encoder_layers",
        "config.json encoder.num_hidden_layers 200",
        hf_folder(edit_json("config.json", set_encoder("num_hidden_layers", 200))),
        "encoder.num_hidden_layers is 200",
    ),
    ModelCase(
        "hf_n_embd_wrong",
        "config.json decoder.n_embd 64, the weights are 32 wide",
        hf_folder(edit_json("config.json", set_decoder("n_embd", 64))),
        "but the weights hold (62, 32)",
    ),
    ModelCase(
        "hf_decoder_bert",
        "a BERT decoder",
        hf_folder(edit_json("config.json", set_decoder("model_type", "bert"))),
        "only GPT-2 decoders",
    ),
    ModelCase(
        "hf_decoder_not_mapping",
        "decoder is a number",
        hf_folder(edit_json("config.json", put("decoder", 5))),
        "only GPT-2 decoders",
    ),
    ModelCase(
        "hf_extra_layer_key",
        "one extra tensor decoder.transformer.h.99999.x",
        hf_folder(edit_weights(set_key("decoder.transformer.h.99999.x", lambda _: zeros(3)))),
        "layer 99999 has weights",
    ),
    ModelCase(
        "hf_weights_nan",
        "a NaN in a decoder weight",
        hf_folder(edit_weights(set_key("decoder.transformer.h.0.mlp.c_fc.weight", poison(float("nan"))))),
        "NaN or infinite values",
    ),
    ModelCase(
        "hf_preprocessor_size_15000",
        "preprocessor_config.json size 15000 x 15000",
        hf_folder(edit_json("preprocessor_config.json", put("size", {"height": 15000, "width": 15000}))),
        "size.height must be",
    ),
    ModelCase(
        "hf_preprocessor_size_int",
        "preprocessor_config.json size 15000",
        hf_folder(edit_json("preprocessor_config.json", put("size", 15000))),
        "size must be",
    ),
    ModelCase(
        "hf_preprocessor_size_mismatch",
        "preprocessor_config.json size 448 for a 32-pixel encoder",
        hf_folder(edit_json("preprocessor_config.json", put("size", {"height": 448, "width": 448}))),
        "size.height is 448",
    ),
    ModelCase(
        "hf_preprocessor_crop_without_crop_size",
        "preprocessor_config.json do_center_crop true, no crop_size, size 448 for a 32-pixel encoder",
        hf_folder(
            edit_json(
                "preprocessor_config.json",
                lambda c: (c.pop("crop_size", None), c.update(do_center_crop=True, size={"height": 448, "width": 448})),
            )
        ),
        "do_center_crop is true but there is no crop_size",
    ),
    ModelCase(
        "hf_preprocessor_no_resize",
        "preprocessor_config.json do_resize false",
        hf_folder(edit_json("preprocessor_config.json", put("do_resize", False))),
        "do_resize is false",
    ),
    ModelCase(
        "hf_preprocessor_fifo",
        "preprocessor_config.json is a FIFO",
        hf_folder(lambda f: ((f / "preprocessor_config.json").unlink(), make_fifo(f / "preprocessor_config.json"))),
        "FIFO",
    ),
    ModelCase(
        "hf_preprocessor_missing",
        "no preprocessor_config.json",
        hf_folder(remove_file("preprocessor_config.json")),
        "no preprocessor_config.json",
    ),
    ModelCase(
        "hf_preprocessor_auto_map",
        "preprocessor_config.json names image_processing_evil.py",
        hf_folder(
            lambda f: add_auto_map(f, "preprocessor_config.json", "image_processing_evil", "EvilProcessor", "AutoImageProcessor")
        ),
        "image_processing_evil.py",
    ),
    ModelCase(
        "hf_config_auto_map",
        "config.json names modeling_evil.py",
        hf_folder(lambda f: add_auto_map(f, "config.json", "modeling_evil", "EvilModel", "AutoModel")),
        "modeling_evil.py",
    ),
    ModelCase(
        "hf_generation_config_bad",
        "generation_config.json num_beams -1",
        hf_folder(edit_json("generation_config.json", put("num_beams", -1))),
        "generation_config.json: num_beams must be",
    ),
    ModelCase("hf_weights_missing", "no weights at all", hf_folder(remove_file("model.safetensors")), "has no weights"),
    ModelCase(
        "hf_index_escapes",
        "a weights index pointing outside the folder",
        hf_folder(index_escaping),
        "shard files in the same folder",
    ),
]
