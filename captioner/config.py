"""Configuration dataclasses (the VisionGPT2 architecture, the decoding settings), their one validation, the limits.

Values from outside (a config.json, a generation_config.json, command-line options, sliders) go through
a typed schema: each field has a type and a range, and the first field that breaks its rule is named
in a `ConfigError` with one line for a person.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, Mapping

Strategy = Literal["greedy", "beam", "sample", "group_beam", "contrastive"]
STRATEGIES: tuple[str, ...] = ("greedy", "beam", "sample", "group_beam", "contrastive")
BEAM_STRATEGIES = ("beam", "group_beam")  # the strategies that keep num_beams hypotheses

# Hard limits that keep one request from taking the machine down (see README "Limits and safety").
MAX_NUM_BEAMS = 16
MAX_NEW_TOKENS = 128
MAX_RETURN_SEQUENCES = 16
MAX_TOP_K = 1_000_000
MAX_ALTERNATIVES = 100
MAX_SEED = 2**64 - 1  # torch's generators take 64-bit seeds
# Ranges of the float settings: beyond them a step's scores overflow or the setting means nothing new
# (a temperature of 0.001 is greedy; 1e-40 turns every score into infinity). A negative length penalty
# multiplies a beam's score by length ** -penalty: below -2, a long caption's score outgrows what beam
# search can compare (at -5, 39-token beams came back empty).
TEMPERATURE_RANGE = (0.01, 100.0)
REPETITION_PENALTY_RANGE = (0.01, 100.0)
LENGTH_PENALTY_RANGE = (-2.0, 3.0)
# Sampling cut-offs (transformers' warpers; each is off at its first value): min-p keeps tokens at least
# min_p x the best one's probability, typical-p the locally typical set of that mass, epsilon and eta
# drop tokens below an absolute (epsilon) or entropy-dependent (eta) probability. Near 1 epsilon and
# eta keep only the best token, which their warpers always keep.
MIN_P_RANGE = (0.0, 1.0)
TYPICAL_P_RANGE = (0.0, 1.0)  # above 0
CUTOFF_RANGE = (0.0, 0.99)  # epsilon_cutoff and eta_cutoff; transformers requires them below 1
# Diverse beam search subtracts diversity_penalty x (how often earlier groups chose a token at this step)
# from the token's log-probability; beyond 100 one repeat outweighs any log-probability float32 tells apart.
DIVERSITY_PENALTY_RANGE = (0.0, 100.0)
# Contrastive search: score = (1 - penalty_alpha) x probability - penalty_alpha x degeneration penalty,
# over the top_k most likely tokens; each candidate is one row of the next step, hence the bound on top_k.
MAX_CONTRASTIVE_TOP_K = MAX_NUM_BEAMS


class ConfigError(ValueError):
    """A setting or a config-file field of the wrong type or out of range. `field` names it."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name


# -- the typed schema ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """The rule for one field: its type, its range (inclusive unless `above`), whether null is allowed."""

    kind: Literal["int", "float", "bool", "str", "floats", "choice"]
    low: float | None = None
    high: float | None = None
    above: bool = False  # the low end itself is excluded
    length: int | None = None  # "floats": how many numbers
    choices: tuple[Any, ...] = ()  # "choice": the allowed values
    nullable: bool = False

    def describe(self) -> str:
        """The allowed values in words, e.g. "a whole number from 1 to 16"."""
        if self.kind == "choice":
            return "one of " + ", ".join(_show(c) for c in self.choices)
        if self.kind in ("bool", "str"):
            return {"bool": "true or false", "str": "a string"}[self.kind]
        noun = {"int": "a whole number", "float": "a number", "floats": f"a list of {self.length} numbers"}[self.kind]
        text = noun + _range_text(self.low, self.high, self.above)
        return text + (" (or none)" if self.nullable else "")

    def check(self, name: str, value: Any) -> Any:
        """`value` if it follows the rule (ints as int, floats as float), else ConfigError naming `name`."""
        if value is None and self.nullable:
            return None
        checked = _CHECKS[self.kind](self, value)
        if checked is _INVALID:
            raise ConfigError(name, f"{name} must be {self.describe()}, not {_show(value)}")
        return checked


_INVALID = object()


def _range_text(low: float | None, high: float | None, above: bool) -> str:
    if low is not None and high is not None:
        return f" above {_show(low)} and at most {_show(high)}" if above else f" from {_show(low)} to {_show(high)}"
    if low is not None:
        return f" above {_show(low)}" if above else f" of at least {_show(low)}"
    return f" of at most {_show(high)}" if high is not None else ""


def _in_range(spec: Spec, x: float) -> bool:
    low_ok = spec.low is None or (x > spec.low if spec.above else x >= spec.low)
    return low_ok and (spec.high is None or x <= spec.high)


def _check_int(spec: Spec, value: Any) -> Any:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        return _INVALID  # numpy integers pass; floats, even 3.0, do not
    value = int(value)
    return value if _in_range(spec, value) else _INVALID


def _check_float(spec: Spec, value: Any) -> Any:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return _INVALID
    try:
        x = float(value)
    except OverflowError:  # an int beyond float's range
        return _INVALID
    return x if math.isfinite(x) and _in_range(spec, x) else _INVALID


def _check_floats(spec: Spec, value: Any) -> Any:
    if not isinstance(value, (list, tuple)) or len(value) != spec.length:
        return _INVALID
    items = [_check_float(spec, v) for v in value]
    return _INVALID if any(v is _INVALID for v in items) else tuple(items)


_CHECKS = {
    "int": _check_int,
    "float": _check_float,
    "floats": _check_floats,
    "bool": lambda spec, v: v if isinstance(v, bool) else _INVALID,
    "str": lambda spec, v: v if isinstance(v, str) else _INVALID,
    "choice": lambda spec, v: v if any(v is c or (type(v) is type(c) and v == c) for c in spec.choices) else _INVALID,
}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return repr(value[:40] + ("…" if len(value) > 40 else ""))
    if (
        isinstance(value, (list, tuple))
        and len(value) <= 4
        and all(isinstance(v, (int, float, str, bool)) or v is None for v in value)
    ):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, (dict, list, tuple)):
        return f"a {'list' if isinstance(value, (list, tuple)) else 'mapping'} of {len(value)} items"
    text = repr(value) if value is not None else "none"
    return text if len(text) <= 40 else text[:40] + "…"


def read_fields(values: Mapping[str, Any], schema: Mapping[str, Spec]) -> dict[str, Any]:
    """The fields of `values` that `schema` knows, each checked (ConfigError on the first bad one)."""
    return {name: spec.check(name, values[name]) for name, spec in schema.items() if name in values}


# -- the VisionGPT2 architecture --------------------------------------------------------------
_UNIT = Spec("float", 0.0, 1.0)
VISIONGPT2_SCHEMA: dict[str, Spec] = {
    "architecture": Spec("str"),
    "vocab_size": Spec("int", 1, 1_000_000),
    "embed_dim": Spec("int", 1, 16_384),
    "num_heads": Spec("int", 1, 1_024),
    "seq_len": Spec("int", 2, 65_536),
    "depth": Spec("int", 1, 256),
    "mlp_ratio": Spec("int", 1, 64),
    "image_size": Spec("int", 1, 4_096),
    "patch_size": Spec("int", 1, 4_096),
    "attention_dropout": _UNIT,
    "residual_dropout": _UNIT,
    "mlp_dropout": _UNIT,
    "emb_dropout": _UNIT,
    "image_mean": Spec("floats", -1e3, 1e3, length=3),
    "image_std": Spec("floats", 1e-6, 1e3, length=3),
    "bos_token_id": Spec("int", 0, 1_000_000),
    "eos_token_id": Spec("int", 0, 1_000_000),
    "pad_token_id": Spec("int", 0, 1_000_000),
}


@dataclass
class VisionGPT2Config:
    """Architecture of a VisionGPT2 captioner; defaults are the full-size seed model."""

    vocab_size: int = 50257
    embed_dim: int = 768
    num_heads: int = 12
    seq_len: int = 1024
    depth: int = 12
    mlp_ratio: int = 4
    image_size: int = 224
    patch_size: int = 16
    attention_dropout: float = 0.1
    residual_dropout: float = 0.1
    mlp_dropout: float = 0.1
    emb_dropout: float = 0.1
    # Image normalisation applied after scaling to [0, 1].
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # The id that starts generation and ends a caption (GPT-2's <|endoftext|>).
    bos_token_id: int = 50256
    eos_token_id: int = 50256
    pad_token_id: int = 50256

    @property
    def grid_size(self) -> int:
        """Patches per image side."""
        return self.image_size // self.patch_size

    @property
    def num_image_tokens(self) -> int:
        """Patches plus the class token."""
        return self.grid_size**2 + 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_mean"] = list(self.image_mean)
        d["image_std"] = list(self.image_std)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "VisionGPT2Config":
        """Build from a dict (e.g. config.json) read through VISIONGPT2_SCHEMA; unknown keys are ignored.

        Raises ConfigError naming the first field of the wrong type or out of range.
        """
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in read_fields(d, VISIONGPT2_SCHEMA).items() if k in known}
        return cls(**kwargs).validate()

    def validate(self) -> "VisionGPT2Config":
        """Check the fields against each other (ConfigError naming the field)."""
        if self.embed_dim % self.num_heads:
            raise ConfigError("num_heads", f"num_heads ({self.num_heads}) must divide embed_dim ({self.embed_dim})")
        if self.image_size % self.patch_size:
            raise ConfigError("patch_size", f"patch_size ({self.patch_size}) must divide image_size ({self.image_size})")
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if getattr(self, name) >= self.vocab_size:
                raise ConfigError(name, f"{name} ({getattr(self, name)}) must be below vocab_size ({self.vocab_size})")
        return self


# -- decoding -----------------------------------------------------------------------------------
DECODING_SCHEMA: dict[str, Spec] = {
    "strategy": Spec("choice", choices=STRATEGIES),
    "max_new_tokens": Spec("int", 1, MAX_NEW_TOKENS),
    "min_new_tokens": Spec("int", 0, MAX_NEW_TOKENS),
    "num_beams": Spec("int", 1, MAX_NUM_BEAMS),
    "length_penalty": Spec("float", *LENGTH_PENALTY_RANGE),
    "early_stopping": Spec("choice", choices=(True, False, "never")),
    "temperature": Spec("float", *TEMPERATURE_RANGE),
    "top_k": Spec("int", 0, MAX_TOP_K),
    "top_p": Spec("float", 0.0, 1.0, above=True),
    "repetition_penalty": Spec("float", *REPETITION_PENALTY_RANGE),
    "no_repeat_ngram_size": Spec("int", 0, MAX_NEW_TOKENS),
    "num_return_sequences": Spec("int", 1, MAX_RETURN_SEQUENCES),
    "min_p": Spec("float", *MIN_P_RANGE),
    "typical_p": Spec("float", *TYPICAL_P_RANGE, above=True),
    "epsilon_cutoff": Spec("float", *CUTOFF_RANGE),
    "eta_cutoff": Spec("float", *CUTOFF_RANGE),
    "num_beam_groups": Spec("int", 1, MAX_NUM_BEAMS),
    "diversity_penalty": Spec("float", *DIVERSITY_PENALTY_RANGE),
    "penalty_alpha": Spec("float", 0.0, 1.0),
    "seed": Spec("int", 0, MAX_SEED, nullable=True),
    "num_alternatives": Spec("int", 0, MAX_ALTERNATIVES),
    "output_attentions": Spec("bool"),
    "label": Spec("str"),
}


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

    strategy: Strategy = "greedy"
    max_new_tokens: int = 20
    min_new_tokens: int = 0
    num_beams: int = 4
    length_penalty: float = 1.0
    early_stopping: bool | Literal["never"] = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    num_return_sequences: int = 1
    min_p: float = 0.0  # 0 = off
    typical_p: float = 1.0  # 1 = off
    epsilon_cutoff: float = 0.0  # 0 = off
    eta_cutoff: float = 0.0  # 0 = off
    num_beam_groups: int = 2  # group_beam: num_beams in this many groups
    diversity_penalty: float = 0.5  # group_beam
    penalty_alpha: float = 0.6  # contrastive (its candidates: top_k)
    seed: int | None = 0
    # How many alternatives to record per step, and whether to record cross-attention.
    num_alternatives: int = 5
    output_attentions: bool = True
    label: str = field(default="", compare=False)

    def validate(self) -> "DecodingConfig":
        """This config with every setting checked: types, finite numbers, ranges, combinations.

        Raises ConfigError (a ValueError) with one line naming each bad setting and its allowed values.
        The same check serves the CLI, the Python API and the app. Numbers of other numeric types
        (numpy's) come back as plain int and float.
        """
        problems: list[ConfigError] = []
        checked: dict[str, Any] = {}
        for name, spec in DECODING_SCHEMA.items():
            try:
                checked[name] = spec.check(name, getattr(self, name))
            except ConfigError as e:
                problems.append(e)
        if not problems:
            problems += _combination_problems(checked)
        if problems:
            text = "; ".join(str(p) for p in problems)
            raise ConfigError(problems[0].field, f"Invalid decoding settings: {text}.")
        return replace(self, **checked)

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


def _combination_problems(c: Mapping[str, Any]) -> list[ConfigError]:
    problems = []
    if c["min_new_tokens"] > c["max_new_tokens"]:
        problems.append(ConfigError("min_new_tokens", f"min_new_tokens must be at most max_new_tokens ({c['max_new_tokens']})"))
    if c["strategy"] in BEAM_STRATEGIES and c["num_return_sequences"] > c["num_beams"]:
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
        if not 1 <= c["top_k"] <= MAX_CONTRASTIVE_TOP_K:
            problems.append(
                ConfigError(
                    "top_k",
                    f"top_k must be from 1 to {MAX_CONTRASTIVE_TOP_K} with contrastive search (its candidates), not {c['top_k']}",
                )
            )
        if c["num_return_sequences"] > 1:
            problems.append(ConfigError("num_return_sequences", "num_return_sequences must be 1 with contrastive search"))
    return problems


# -- a model's own defaults: Hugging Face's generation_config.json --------------------------------
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
        changes["num_beams"] = min(beams, MAX_NUM_BEAMS)
    limit = min(MAX_NEW_TOKENS, max_new_tokens_limit or MAX_NEW_TOKENS)
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
        changes["top_k"] = min(g.get("top_k", HF_SAMPLING_TOP_K), MAX_TOP_K)
        for name in ("min_p", "typical_p"):
            if name in g:
                changes[name] = g[name]
        for name in ("epsilon_cutoff", "eta_cutoff"):  # generate applies them only below 1
            if name in g:
                changes[name] = min(g[name], CUTOFF_RANGE[1]) if g[name] < 1.0 else 0.0
    if changes["strategy"] == "group_beam":
        changes["num_beam_groups"] = min(g["num_beam_groups"], changes["num_beams"])
        changes["diversity_penalty"] = min(g.get("diversity_penalty", 0.0), DIVERSITY_PENALTY_RANGE[1])
    if changes["strategy"] == "contrastive":
        changes["top_k"] = min(g["top_k"], MAX_CONTRASTIVE_TOP_K)
        changes["penalty_alpha"] = g["penalty_alpha"]
    if "num_return_sequences" in g and changes["strategy"] not in ("greedy", "contrastive"):
        most = changes["num_beams"] if changes["strategy"] in BEAM_STRATEGIES else MAX_RETURN_SEQUENCES
        changes["num_return_sequences"] = min(g["num_return_sequences"], most)
    changes["no_repeat_ngram_size"] = min(changes.get("no_repeat_ngram_size", d.no_repeat_ngram_size), MAX_NEW_TOKENS)
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
