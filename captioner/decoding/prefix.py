"""A forced prefix: the first tokens of every caption, given as token ids or as text.

Text goes through the model's own tokenizer (no special tokens added). A prefix is refused with one
line (PrefixError, a ValueError) when the tokenizer cannot encode it (a word it only knows as its
unknown token), when it holds the end token or ids outside the model's vocabulary, or when it is
longer than the positions the model has after its start token.
"""

from __future__ import annotations

from typing import Sequence

Prefix = str | Sequence[int] | None


class PrefixError(ValueError):
    """A prefix the model cannot start a caption with."""


def prefix_ids(model, prefix: Prefix) -> list[int]:
    """The token ids of `prefix` for `model` ([] for none or empty), checked as far as the tokenizer tells."""
    if prefix is None:
        return []
    if isinstance(prefix, str):
        ids = _encode(model.tokenizer, prefix)
    else:
        ids = list(prefix)
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
            raise PrefixError("prefix token ids must be whole numbers of at least 0")
    if model.eos_token_id in ids:
        raise PrefixError("the prefix holds the end token: a caption cannot go on after it")
    limit = model.max_new_tokens_limit
    if len(ids) > limit:
        raise PrefixError(f"the prefix has {len(ids)} tokens; this model holds at most {limit} after its start token")
    return ids


def check_prefix_ids(ids: list[int], vocab_size: int) -> None:
    """PrefixError if an id is outside the model's vocabulary (known once a step gave its logits)."""
    outside = [i for i in ids if i >= vocab_size]
    if outside:
        raise PrefixError(f"prefix token id {outside[0]} is outside this model's vocabulary of {vocab_size} tokens")


MAX_PREFIX_CHARS = 10_000  # no model here holds more positions than this: longer text is refused before tokenizing


def _encode(tokenizer, text: str) -> list[int]:
    if len(text) > MAX_PREFIX_CHARS:
        raise PrefixError(f"the prefix is longer than {MAX_PREFIX_CHARS} characters")
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    unknown = getattr(tokenizer, "unk_token_id", None)
    # GPT-2's tokenizer has unk = end: any text encodes without it, so only a separate unknown token tells.
    eos = getattr(tokenizer, "eos_token_id", None)
    if unknown is not None and unknown != eos and unknown in ids:
        words = [w for w in text.split() if unknown in tokenizer(w, add_special_tokens=False)["input_ids"]]
        shown = ", ".join(repr(w[:30]) for w in words[:3]) or repr(text[:30])
        raise PrefixError(f"the prefix has words this model's tokenizer does not know: {shown}")
    return ids
