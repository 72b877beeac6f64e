"""A model's own decoding defaults: Hugging Face's generation_config.json, read through its schema and brought
within this project's limits as the `DecodingConfig` that `generate` would run."""

from __future__ import annotations

from typing import Any, Mapping

from captioner.config.decoding import DECODING_SCHEMA, DecodingConfig
from captioner.config import limits
from captioner.config.schema import Spec, read_fields

GENERATION_SCHEMA: dict[str, Spec] = {
    "max_length": Spec("int", 1, 1_000_000, nullable=True),
    "max_new_tokens": Spec("int", 1, 1_000_000, nullable=True),
    "min_length": Spec("int", 0, 1_000_000, nullable=True),
    "min_new_tokens": Spec("int", 0, 1_000_000, nullable=True),
    "num_beams": Spec("int", 1, 10_000, nullable=True),
    "num_return_sequences": Spec("int", 1, 10_000, nullable=True),
    "do_sample": Spec("bool", nullable=True),
    "early_stopping": Spec("choice", choices=(True, False, "never"), nullable=True),
    "length_penalty": Spec("float", -1e6, 1e6, nullable=True),
    "repetition_penalty": Spec("float", 0.0, 1e6, above=True, nullable=True),
    "no_repeat_ngram_size": Spec("int", 0, 1_000_000, nullable=True),
    "top_k": Spec("int", 0, 1_000_000_000, nullable=True),
    "top_p": Spec("float", 0.0, 1.0, above=True, nullable=True),
    "temperature": Spec("float", 0.0, 1e6, above=True, nullable=True),
    "min_p": Spec("float", 0.0, 1.0, nullable=True),
    "typical_p": Spec("float", 0.0, 1.0, above=True, nullable=True),
    "epsilon_cutoff": Spec("float", 0.0, 1.0, nullable=True),
    "eta_cutoff": Spec("float", 0.0, 1.0, nullable=True),
    "num_beam_groups": Spec("int", 1, 10_000, nullable=True),
    "diversity_penalty": Spec("float", 0.0, 1e6, nullable=True),
    "penalty_alpha": Spec("float", 0.0, 1.0, nullable=True),
}
HF_SAMPLING_TOP_K = 50  # what transformers' generate uses when a sampling config names no top_k


def decoding_from_generation_config(
    values: Mapping[str, Any], base: DecodingConfig | None = None, max_new_tokens_limit: int | None = None
) -> DecodingConfig:
    """The decoding defaults a Hugging Face generation config gives (e.g. max_length 16, num_beams 4).

    Only the fields present change `base`. max_length counts the start token, as transformers counts
    it for encoder-decoder models. Values beyond this project's limits (beams, tokens, the model's
    positions) are brought within them; values of the wrong type or outside what transformers
    accepts raise ConfigError naming the field.
    """
    g = {k: v for k, v in read_fields(values, GENERATION_SCHEMA).items() if v is not None}
    d = base or DecodingConfig()
    beams = g.get("num_beams", 1)
    changes: dict[str, Any] = {"strategy": _generation_strategy(g)}
    if beams > 1:
        changes["num_beams"] = min(beams, limits.MAX_NUM_BEAMS)
    limit = min(limits.MAX_NEW_TOKENS, max_new_tokens_limit or limits.MAX_NEW_TOKENS)
    if "max_new_tokens" in g or "max_length" in g:
        changes["max_new_tokens"] = max(1, min(g.get("max_new_tokens") or g["max_length"] - 1, limit))
    if "min_new_tokens" in g or "min_length" in g:
        wanted = g.get("min_new_tokens", max(0, g.get("min_length", 0) - 1))
        changes["min_new_tokens"] = min(wanted, changes.get("max_new_tokens", d.max_new_tokens))
    for name in ("length_penalty", "repetition_penalty", "temperature"):
        if name in g:
            low, high = DECODING_SCHEMA[name].low, DECODING_SCHEMA[name].high
            changes[name] = min(max(g[name], low), high)
    for name in ("early_stopping", "no_repeat_ngram_size", "top_p"):
        if name in g:
            changes[name] = g[name]
    if changes["strategy"] == "sample":
        changes["top_k"] = min(g.get("top_k", HF_SAMPLING_TOP_K), limits.MAX_TOP_K)
        for name in ("min_p", "typical_p"):
            if name in g:
                changes[name] = g[name]
        for name in ("epsilon_cutoff", "eta_cutoff"):  # generate applies them only below 1
            if name in g:
                changes[name] = min(g[name], limits.CUTOFF_RANGE[1]) if g[name] < 1.0 else 0.0
    if changes["strategy"] == "group_beam":
        changes["num_beam_groups"] = min(g["num_beam_groups"], changes["num_beams"])
        changes["diversity_penalty"] = min(g.get("diversity_penalty", 0.0), limits.DIVERSITY_PENALTY_RANGE[1])
    if changes["strategy"] == "contrastive":
        changes["top_k"] = min(g["top_k"], limits.MAX_CONTRASTIVE_TOP_K)
        changes["penalty_alpha"] = g["penalty_alpha"]
    if "num_return_sequences" in g and changes["strategy"] not in ("greedy", "contrastive"):
        most = changes["num_beams"] if changes["strategy"] in limits.BEAM_STRATEGIES else limits.MAX_RETURN_SEQUENCES
        changes["num_return_sequences"] = min(g["num_return_sequences"], most)
    changes["no_repeat_ngram_size"] = min(changes.get("no_repeat_ngram_size", d.no_repeat_ngram_size), limits.MAX_NEW_TOKENS)
    return d.with_(**changes).validate()


def _generation_strategy(g: Mapping[str, Any]) -> str:
    """The method generate would run: sampling, contrastive search (penalty_alpha > 0 and top_k > 1),
    diverse beam search (num_beam_groups > 1), beam search, greedy."""
    beams = g.get("num_beams", 1)
    if g.get("do_sample"):
        return "sample"
    if g.get("penalty_alpha", 0.0) > 0 and g.get("top_k", 0) > 1:
        return "contrastive"
    if beams > 1 and g.get("num_beam_groups", 1) > 1:
        return "group_beam"
    return "beam" if beams > 1 else "greedy"
