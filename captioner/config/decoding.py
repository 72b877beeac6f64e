"""The decoding settings: `DecodingConfig`, each setting declared once with its default and its range, its one
validation (the CLI, the Python API and the app all use it) and its cache key."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterable, Literal, Mapping

from captioner.config import limits
from captioner.config.schema import ConfigError, Spec, checked, schema_of

_TOKENS = Spec("int", 0, limits.MAX_NEW_TOKENS)
_BEAMS = Spec("int", 1, limits.MAX_NUM_BEAMS)
_CUTOFF = Spec("float", *limits.CUTOFF_RANGE)


@dataclass
class DecodingConfig:
    """How to turn next-token distributions into a caption.

    The semantics follow transformers' ``generate``: processors (repetition penalty,
    no-repeat n-grams, min length) apply to raw logits for greedy and sampling and to
    log-probabilities for beam search; temperature, top-k, top-p, min-p, typical-p,
    epsilon and eta only apply when sampling. group_beam is diverse beam search (Vijayakumar et
    al. 2016: num_beam_groups groups, diversity_penalty); contrastive is contrastive search
    (Su et al. 2022: penalty_alpha over the top_k candidates).
    """

    strategy: limits.Strategy = checked("greedy", Spec("choice", choices=limits.STRATEGIES))
    max_new_tokens: int = checked(20, Spec("int", 1, limits.MAX_NEW_TOKENS))
    min_new_tokens: int = checked(0, _TOKENS)
    num_beams: int = checked(4, _BEAMS)
    length_penalty: float = checked(1.0, Spec("float", *limits.LENGTH_PENALTY_RANGE))
    early_stopping: bool | Literal["never"] = checked(False, Spec("choice", choices=(True, False, "never")))
    temperature: float = checked(1.0, Spec("float", *limits.TEMPERATURE_RANGE))
    top_k: int = checked(0, Spec("int", 0, limits.MAX_TOP_K))
    top_p: float = checked(1.0, Spec("float", 0.0, 1.0, above=True))
    repetition_penalty: float = checked(1.0, Spec("float", *limits.REPETITION_PENALTY_RANGE))
    no_repeat_ngram_size: int = checked(0, _TOKENS)
    num_return_sequences: int = checked(1, Spec("int", 1, limits.MAX_RETURN_SEQUENCES))
    min_p: float = checked(0.0, Spec("float", *limits.MIN_P_RANGE))  # 0 = off
    typical_p: float = checked(1.0, Spec("float", *limits.TYPICAL_P_RANGE, above=True))  # 1 = off
    epsilon_cutoff: float = checked(0.0, _CUTOFF)  # 0 = off
    eta_cutoff: float = checked(0.0, _CUTOFF)  # 0 = off
    num_beam_groups: int = checked(2, _BEAMS)  # group_beam: num_beams in this many groups
    diversity_penalty: float = checked(0.5, Spec("float", *limits.DIVERSITY_PENALTY_RANGE))  # group_beam
    penalty_alpha: float = checked(0.6, Spec("float", 0.0, 1.0))  # contrastive (its candidates: top_k)
    seed: int | None = checked(0, Spec("int", 0, limits.MAX_SEED, nullable=True))
    # How many alternatives to record per step, and whether to record cross-attention.
    num_alternatives: int = checked(5, Spec("int", 0, limits.MAX_ALTERNATIVES))
    output_attentions: bool = checked(True, Spec("bool"))
    label: str = checked("", Spec("str"), compare=False)  # a name for a person; it changes no caption

    def validate(self) -> "DecodingConfig":
        """This config with every setting checked: types, finite numbers, ranges, combinations.

        Raises ConfigError (a ValueError) with one line naming each bad setting and its allowed values.
        The same check serves the CLI, the Python API and the app. Numbers of other numeric types
        (numpy's) come back as plain int and float.
        """
        problems: list[ConfigError] = []
        checked_values: dict[str, Any] = {}
        for name, spec in DECODING_SCHEMA.items():
            try:
                checked_values[name] = spec.check(name, getattr(self, name))
            except ConfigError as e:
                problems.append(e)
        if not problems:
            problems += _combination_problems(checked_values)
        if problems:
            text = "; ".join(str(p) for p in problems)
            raise ConfigError(problems[0].field, f"Invalid decoding settings: {text}.")
        return replace(self, **checked_values)

    def within_limit(self, max_new_tokens_limit: int) -> tuple["DecodingConfig", str | None]:
        """This config with max_new_tokens at most what a model can hold, and a one-line notice if it was cut."""
        if self.max_new_tokens <= max_new_tokens_limit:
            return self, None
        notice = (
            f"max_new_tokens {self.max_new_tokens} is more than the model holds after its start token "
            f"({max_new_tokens_limit}); using {max_new_tokens_limit}."
        )
        limit = max(1, max_new_tokens_limit)
        return self.with_(max_new_tokens=limit, min_new_tokens=min(self.min_new_tokens, limit)), notice

    def with_(self, **changes: Any) -> "DecodingConfig":
        """A copy with some settings changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def cache_key(self, leave_out: Iterable[str] = (), **extra: Any) -> str:
        """The settings as one stable string, to key caches and runs with: JSON, keys sorted.

        The label is left out: it names the config for a person and changes no caption, so two configs
        have the same key exactly when they compare equal (== ignores the label too). Numbers are
        validated first (1 and 1.0 give one key; an invalid config raises ConfigError). `leave_out`
        drops more settings (a batch run: those that only change what a row records); `extra` adds
        entries beside the settings (a model's dtype; a label where the cached value shows it).
        """
        settings = {k: v for k, v in self.validate().to_dict().items() if k != "label" and k not in leave_out}
        clash = sorted(settings.keys() & extra.keys())
        if clash:
            raise ValueError(f"cache_key: {', '.join(clash)} is a setting, not an extra entry")
        return json.dumps({**settings, **extra}, sort_keys=True)


DECODING_SCHEMA: dict[str, Spec] = schema_of(DecodingConfig)


def _combination_problems(c: Mapping[str, Any]) -> list[ConfigError]:
    problems = []
    if c["min_new_tokens"] > c["max_new_tokens"]:
        problems.append(ConfigError("min_new_tokens", f"min_new_tokens must be at most max_new_tokens ({c['max_new_tokens']})"))
    if c["strategy"] in limits.BEAM_STRATEGIES and c["num_return_sequences"] > c["num_beams"]:
        problems.append(ConfigError("num_return_sequences", f"num_return_sequences must be at most num_beams ({c['num_beams']})"))
    if c["strategy"] == "greedy" and c["num_return_sequences"] > 1:
        problems.append(
            ConfigError(
                "num_return_sequences",
                "num_return_sequences must be 1 with greedy decoding (use beam search or sampling for more)",
            )
        )
    if c["strategy"] == "group_beam" and c["num_beams"] % c["num_beam_groups"]:
        problems.append(
            ConfigError("num_beam_groups", f"num_beam_groups must divide num_beams ({c['num_beams']}) with diverse beam search")
        )
    if c["strategy"] == "contrastive":
        if not 1 <= c["top_k"] <= limits.MAX_CONTRASTIVE_TOP_K:
            problems.append(
                ConfigError(
                    "top_k",
                    f"top_k must be from 1 to {limits.MAX_CONTRASTIVE_TOP_K} with contrastive search (its candidates), not {c['top_k']}",
                )
            )
        if c["num_return_sequences"] > 1:
            problems.append(ConfigError("num_return_sequences", "num_return_sequences must be 1 with contrastive search"))
    return problems
