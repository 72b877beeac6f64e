"""Tokenizers as people save them: the folder's own (save_pretrained or a tokenizer.json), else GPT-2's.

Every tokenizer file is checked (regular, within its cap; JSON ones read strictly) before
transformers reads it, and `trust_remote_code` is never set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from captioner.loading.config_files import read_json_file
from captioner.loading.errors import ModelLoadError, checked_file, one_line
from captioner.loading.hub import hub_snapshot

GPT2_TOKENIZER = "gpt2"
END_OF_TEXT = "<|endoftext|>"
MAX_TOKENIZER_BYTES = 64_000_000  # README "Limits and safety"
TOKENIZER_FILES = (
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)


def load_tokenizer(folder: Path) -> Any:
    """The tokenizer saved in `folder`, else GPT-2's from the local Hugging Face cache (or the hub).

    Accepted layouts: `save_pretrained` output (tokenizer_config.json with tokenizer.json or vocab.json +
    merges.txt, with or without special_tokens_map.json), or a tokenizer.json alone.
    """
    present = _tokenizer_files(folder)
    if not present:
        folder = _gpt2_tokenizer_folder(folder)
        present = _tokenizer_files(folder)
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        if "tokenizer_config.json" in present:
            return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False, local_files_only=True)
        if "tokenizer.json" in present:
            return PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    except ModelLoadError:
        raise
    except Exception as e:  # a broken tokenizer file can fail in many ways inside tokenizers
        raise ModelLoadError(f"The tokenizer in {folder} could not be read: {one_line(e)}") from None
    raise ModelLoadError(f"{folder} has {', '.join(present)} but no tokenizer.json or tokenizer_config.json to read them with.")


def _tokenizer_files(folder: Path) -> list[str]:
    """The tokenizer files present in `folder`, each checked: regular, within its cap, JSON ones read."""
    present = [name for name in TOKENIZER_FILES if os.path.lexists(folder / name)]
    for name in present:
        if name.endswith("_config.json") or name in ("special_tokens_map.json", "added_tokens.json"):
            read_json_file(folder / name, MAX_TOKENIZER_BYTES)  # a long added-tokens list can pass 1 MB
        else:
            checked_file(folder / name, MAX_TOKENIZER_BYTES, "a tokenizer file")
    return present


def _gpt2_tokenizer_folder(beside: Path) -> Path:
    def complete(snapshot: Path) -> bool:
        return (snapshot / "tokenizer.json").exists() or (
            (snapshot / "vocab.json").exists() and (snapshot / "merges.txt").exists()
        )

    try:
        return hub_snapshot(GPT2_TOKENIZER, [*TOKENIZER_FILES, "config.json"], complete)
    except ModelLoadError as e:
        raise ModelLoadError(
            f"No tokenizer beside the checkpoint in {beside} (looked for tokenizer_config.json and tokenizer.json), and GPT-2's "
            f"tokenizer is neither in the local Hugging Face cache nor reachable on the hub: {e} Put the tokenizer "
            "files next to the weights (GPT-2's tokenizer's save_pretrained(folder) writes them)."
        ) from None


def end_of_text_id(tokenizer: Any) -> int:
    """The id that starts and ends a caption: `<|endoftext|>` if the vocabulary has it, else eos, else bos.

    GPT-2's tokenizer has unk = bos = eos = `<|endoftext|>` (id 50256), and that is fine.
    """
    vocab = tokenizer.get_vocab()
    for token in (END_OF_TEXT, getattr(tokenizer, "eos_token", None), getattr(tokenizer, "bos_token", None)):
        if isinstance(token, str) and token in vocab:
            return int(vocab[token])
    raise ModelLoadError(f"The tokenizer has no end-of-text token: neither {END_OF_TEXT} nor an eos or bos token it knows.")


PADDING_MULTIPLE = 64  # training code pads the vocabulary to a multiple of 64 (nanoGPT: GPT-2's 50257 -> 50304)


def vocabulary_padding(tokenizer: Any, model_vocab: int, folder: Path) -> str | None:
    """Refuse a tokenizer whose vocabulary is not the model's; a model vocabulary padded up to the next
    multiple of 64 fits too, and is said in the note returned (None when the sizes are equal)."""
    size = len(tokenizer)
    if size == model_vocab:
        return None
    padded = -(-size // PADDING_MULTIPLE) * PADDING_MULTIPLE
    if size < model_vocab == padded:
        return (
            f"the model has {model_vocab} token ids and its tokenizer {size}: ids {size} to {model_vocab - 1} are "
            f"padding (to a multiple of {PADDING_MULTIPLE}) with no text"
        )
    raise ModelLoadError(
        f"The tokenizer in {folder} has {size} tokens but the model has {model_vocab} token ids: they were not "
        "trained together. Put the model's own tokenizer beside its weights."
    )
