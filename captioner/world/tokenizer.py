"""Word-level tokenizer over the scene-world vocabulary (one token per word).

Ids: 0 = ``<|endoftext|>`` (bos = eos = pad), 1 = ``<unk>``, then VOCABULARY in
order. Token i of a caption is word i of ``text.split()``.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from .captions import VOCABULARY

EOS_TOKEN = "<|endoftext|>"
UNK_TOKEN = "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (EOS_TOKEN, UNK_TOKEN)


def build_raw_tokenizer() -> Tokenizer:
    """The `tokenizers.Tokenizer`: lowercase, whitespace split, WordLevel, words joined by spaces."""
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *VOCABULARY))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # WordPiece decoder with an unused prefix: joins tokens with single spaces
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return tok


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The transformers tokenizer (no bos/eos added automatically: the caller adds them)."""
    return PreTrainedTokenizerFast(
        tokenizer_object=build_raw_tokenizer(),
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        clean_up_tokenization_spaces=False,
        model_max_length=64,
    )


def save_tokenizer(directory: str | Path) -> Path:
    """Write tokenizer.json (+ tokenizer_config.json) so AutoTokenizer loads it offline."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    build_tokenizer().save_pretrained(str(directory))
    return directory
