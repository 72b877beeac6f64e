"""The app's words for things: escaping for Markdown, shortening, number formats, and the labels of tokens,
layers, heads and decoding configurations. No Streamlit, no pandas: every page and the UI use these."""

from __future__ import annotations

import re

from captioner.config import DecodingConfig

END_LABEL = "⟨end⟩"
_END_TOKENS = ("<|endoftext|>", "</s>", "[SEP]", "<eos>")

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$&:])")
_AUTOLINK = re.compile(r"(?i)(https?|ftp|www)(?=&#58;|&#46;)")


def markdown_escape(text: str) -> str:
    """Plain text safe in Markdown with HTML (user-supplied names, captions, tokens): every special character
    becomes an entity, and a word joiner (invisible) after "https" or "www" keeps GitHub-flavoured Markdown
    from turning a URL inside a name into a link."""
    escaped = _MD_SPECIAL.sub(lambda m: f"&#{ord(m.group(1))};", text)
    return _AUTOLINK.sub("\\1\u2060", escaped)


def shorten(text: str, most: int = 60) -> str:
    """`text` in at most `most` characters: its start and end around an ellipsis when longer."""
    text = " ".join(str(text).split())  # one line
    if len(text) <= most:
        return text
    head = (most - 1) * 2 // 3
    return text[:head] + "…" + text[len(text) - (most - 1 - head) :]


def milliseconds(seconds: float) -> str:
    """A duration as whole milliseconds: "12 ms"."""
    return f"{seconds * 1000:.0f} ms"


def token_label(token: str) -> str:
    """How a token reads in tables and on heatmaps: trimmed, the end token named."""
    text = token.strip()
    if text in _END_TOKENS:
        return END_LABEL
    return text or repr(token)


def layer_text(layer: int | str) -> str:
    """A layer choice as the page names it: "layer 3", or the aggregate's own name."""
    return layer if isinstance(layer, str) else f"layer {layer + 1}"


def head_text(head: int | str) -> str:
    """A head choice as the page names it: "head 2", or the aggregate's own name."""
    return head if isinstance(head, str) else f"head {head + 1}"


def config_label(config: DecodingConfig) -> str:
    """A short name for a decoding configuration: its label, or one made from its settings."""
    if config.label:
        return config.label
    if config.strategy == "greedy":
        return "greedy"
    if config.strategy == "beam":
        return f"beam ({config.num_beams})"
    if config.strategy == "group_beam":
        return f"diverse beam ({config.num_beams} in {config.num_beam_groups}, penalty {config.diversity_penalty:g})"
    if config.strategy == "contrastive":
        return f"contrastive (alpha {config.penalty_alpha:g}, k {config.top_k})"
    parts = _sampling_parts(config)
    return "sample" + (" " + ", ".join(parts) if parts else "")


def _sampling_parts(config: DecodingConfig) -> list[str]:
    parts = []
    if config.top_k:
        parts.append(f"top-k {config.top_k}")
    if config.top_p < 1:
        parts.append(f"top-p {config.top_p:g}")
    if config.temperature != 1:
        parts.append(f"T {config.temperature:g}")
    for name, value, off in (
        ("min-p", config.min_p, 0),
        ("typical-p", config.typical_p, 1),
        ("epsilon", config.epsilon_cutoff, 0),
        ("eta", config.eta_cutoff, 0),
    ):
        if value != off:
            parts.append(f"{name} {value:g}")
    return parts


def score_basis(config: DecodingConfig) -> str:
    """Which probabilities a configuration's score is made of: the model's own, or which renormalised ones."""
    parts = _sampling_parts(config) if config.strategy == "sample" else []
    if config.repetition_penalty != 1:
        parts.append(f"repetition penalty {config.repetition_penalty:g}")
    if config.no_repeat_ngram_size:
        parts.append(f"no repeated {config.no_repeat_ngram_size}-grams")
    return "after " + ", ".join(parts) if parts else "model's own"
