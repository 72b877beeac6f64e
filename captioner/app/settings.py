"""The app's controls as data: each setting's range, its default from a model, and its form in a URL. No
Streamlit here: `ui/` draws widgets from these tables, and anything from outside (a link, a value stored for
another model) goes through `Range.snap` first, so no value outside a widget's range reaches Streamlit or the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

from captioner.config import MAX_NEW_TOKENS, MAX_NUM_BEAMS, MAX_SEED, STRATEGIES, DecodingConfig

SEED_MAX = MAX_SEED  # 2**64 - 1, as the README promises: torch's generators take 64-bit seeds
TOP_K_MAX = 200  # the Top-k sliders' end, or the model's vocabulary when that is smaller
STRATEGY_NAMES = {
    "greedy": "Greedy",
    "beam": "Beam search",
    "sample": "Sampling",
    "group_beam": "Diverse beam search",
    "contrastive": "Contrastive search",
}
BEAMS = ("beam", "group_beam")


@dataclass(frozen=True)
class Range:
    """A numeric control: `name` (a DecodingConfig field or a page setting), its label, range and step."""

    name: str
    label: str
    lo: float
    hi: float
    step: float
    applies_to: tuple[str, ...] = STRATEGIES  # the strategies that use it (the others ignore it)
    help: str | None = None
    param: str = ""  # its URL parameter (default: `name`)

    @property
    def url_name(self) -> str:
        return self.param or self.name

    @property
    def is_int(self) -> bool:
        return isinstance(self.step, int)

    def snap(self, value: float) -> int | float:
        """`value` clamped into the range and rounded to the step grid (an int for integer ranges)."""
        if self.is_int and isinstance(value, int) and not isinstance(value, bool):  # exact: seeds go to 2**64 - 1
            return int(min(max(value, int(self.lo)), int(self.hi)))
        v = min(max(float(value), self.lo), self.hi)
        v = self.lo + round((v - self.lo) / self.step) * self.step
        v = min(max(v, self.lo), self.hi)
        return min(max(int(round(v)), int(self.lo)), int(self.hi)) if self.is_int else round(v, 6)

    def fits(self, value: Any) -> bool:
        """`value` is already a valid widget value (in range, on the grid, of the right type)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        return (not self.is_int or isinstance(value, int)) and self.snap(value) == value

    def containing(self, value: Any) -> "Range":
        """The range widened (never narrowed) so that `value`, a model's own default, is inside it."""
        if not _is_number(value):
            return self
        return replace(self, lo=min(self.lo, value), hi=max(self.hi, value))


DECODING_RANGES: tuple[Range, ...] = (
    Range(
        "max_new_tokens",
        "Max new tokens",
        1,
        MAX_NEW_TOKENS,
        1,
        help="The longest caption, in tokens. The slider stops at what this model can hold.",
    ),
    Range("num_beams", "Beams", 1, MAX_NUM_BEAMS, 1, BEAMS),
    Range(
        "length_penalty",
        "Length penalty",
        -1.0,
        3.0,
        0.1,
        BEAMS,
        help="Beam score = sum of log-probs / length ** penalty: above 0 favours longer captions.",
    ),
    Range(
        "num_beam_groups",
        "Beam groups",
        1,
        MAX_NUM_BEAMS,
        1,
        ("group_beam",),
        help="Diverse beam search splits the beams into this many groups; it must divide the beams.",
    ),
    Range(
        "diversity_penalty",
        "Diversity penalty",
        0.0,
        5.0,
        0.1,
        ("group_beam",),
        help="Subtracted from a token's log-prob for each earlier group that chose it at this step.",
    ),
    Range(
        "penalty_alpha",
        "Degeneration penalty (alpha)",
        0.0,
        1.0,
        0.05,
        ("contrastive",),
        help="Contrastive search: (1 - alpha) x probability - alpha x similarity to the caption so far; 0 = greedy.",
    ),
    Range("temperature", "Temperature", 0.05, 2.0, 0.05, ("sample",)),
    Range(
        "top_k",
        "Top-k",
        0,
        TOP_K_MAX,
        1,
        ("sample", "contrastive"),
        help="Sampling: 0 = off. Contrastive search: its candidates, 1 to 16.",
    ),
    Range("top_p", "Top-p", 0.05, 1.0, 0.05, ("sample",), help="1.0 = off"),
    Range(
        "min_p", "Min-p", 0.0, 1.0, 0.01, ("sample",), help="0 = off: keep tokens at least min-p x the best one's probability."
    ),
    Range(
        "typical_p", "Typical-p", 0.05, 1.0, 0.05, ("sample",), help="1.0 = off: keep the locally typical tokens of this mass."
    ),
    Range(
        "epsilon_cutoff", "Epsilon cut-off", 0.0, 0.05, 0.0005, ("sample",), help="0 = off: drop tokens below this probability."
    ),
    Range(
        "eta_cutoff",
        "Eta cut-off",
        0.0,
        0.05,
        0.0005,
        ("sample",),
        help="0 = off: drop tokens below a probability that falls as the distribution's entropy grows.",
    ),
    Range("repetition_penalty", "Repetition penalty", 0.5, 2.0, 0.05, help="1.0 = off"),
    Range("no_repeat_ngram_size", "No-repeat n-gram size", 0, 6, 1, help="0 = off"),
    Range("seed", "Seed", 0, SEED_MAX, 1, ("sample",), help="The same seed draws the same samples."),
)

COMPARE_RANGES: tuple[Range, ...] = (
    Range("samples", "Samples per sampling strategy", 1, 16, 1, param="compare_samples"),
    Range("beams", "Beams", 2, MAX_NUM_BEAMS, 1, param="compare_beams"),
    Range("top_k", "Top-k", 1, TOP_K_MAX, 1, param="compare_top_k"),
    Range("top_p", "Top-p", 0.05, 1.0, 0.05, param="compare_top_p"),
)
COMPARE_DEFAULTS = {"samples": 5, "top_k": 50, "top_p": 0.9}

LAYER_MEAN = "mean over layers"
HEAD_MEAN, HEAD_MAX = "mean over heads", "max over heads"
# How the Explain page's layer and head read in a URL: these words, or a 1-based number.
ATTENTION_WORDS = {"layer": {"mean": LAYER_MEAN}, "head": {"mean": HEAD_MEAN, "max": HEAD_MAX}}
ATTENTION_DEFAULTS = {"layer": LAYER_MEAN, "head": HEAD_MEAN}

OPACITY = Range("opacity", "Heatmap opacity", 0.0, 1.0, 0.05, help="0 shows the image alone, 1 the attention alone.")
OPACITY_DEFAULT = 0.6


def token_limit(model_limit: int) -> int:
    """The longest caption the app asks for: the model's own limit, and never above MAX_NEW_TOKENS."""
    return max(1, min(MAX_NEW_TOKENS, int(model_limit)))


def top_k_max(vocab_size: int = 0) -> int:
    """The Top-k sliders' end: TOP_K_MAX, or the model's vocabulary when smaller (0: unknown)."""
    return min(TOP_K_MAX, vocab_size) if vocab_size > 1 else TOP_K_MAX


def decoding_ranges(model_limit: int, default: DecodingConfig | None = None, vocab_size: int = 0) -> tuple[Range, ...]:
    """DECODING_RANGES fitted to a model: max_new_tokens ends at what it can hold, top-k at its vocabulary,
    and every range contains the model's own `default` setting (so the page starts where the CLI does)."""
    limit = token_limit(model_limit)
    ends = {"max_new_tokens": limit, "top_k": top_k_max(vocab_size)}
    ranges = tuple(replace(r, hi=ends[r.name]) if r.name in ends else r for r in DECODING_RANGES)
    if default is None:
        return ranges
    return tuple(r if r.name == "max_new_tokens" else r.containing(getattr(default, r.name)) for r in ranges)


def decoding_defaults(config: DecodingConfig, model_limit: int, vocab_size: int = 0) -> dict[str, Any]:
    """The controls' starting values: the model's own decoding settings, snapped into the ranges."""
    values: dict[str, Any] = {"strategy": config.strategy if config.strategy in STRATEGIES else "greedy"}
    for r in decoding_ranges(model_limit, config, vocab_size):
        raw = getattr(config, r.name)
        values[r.name] = r.snap(0 if raw is None else raw)
    return values


def compare_ranges(vocab_size: int = 0) -> tuple[Range, ...]:
    """COMPARE_RANGES with Top-k ending at the model's vocabulary."""
    return tuple(replace(r, hi=top_k_max(vocab_size)) if r.name == "top_k" else r for r in COMPARE_RANGES)


def compare_defaults(config: DecodingConfig, vocab_size: int = 0) -> dict[str, Any]:
    """The Compare page's starting values: the model's beam count, fixed sampling settings."""
    values = {**COMPARE_DEFAULTS, "beams": max(config.num_beams, 2)}
    return {r.name: r.snap(values[r.name]) for r in compare_ranges(vocab_size)}


def config_with(base: DecodingConfig, values: Mapping[str, Any]) -> DecodingConfig:
    """`base` with the decoding settings in `values` (other keys ignored)."""
    fields = {k: v for k, v in values.items() if k == "strategy" or k in {r.name for r in DECODING_RANGES}}
    return base.with_(**fields)


def snap_all(values: Mapping[str, Any], ranges: tuple[Range, ...], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Every range's value from `values`, made valid: snapped into range, the default where unusable."""
    out = {}
    for r in ranges:
        v = values.get(r.name, defaults[r.name])
        out[r.name] = v if r.fits(v) else (r.snap(v) if _is_number(v) else defaults[r.name])
    return out


# -- URLs ---------------------------------------------------------------------------------------
def format_value(value: Any) -> str:
    """A value as it reads in a URL: integers plainly, floats without trailing zeros."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def to_params(
    values: Mapping[str, Any], defaults: Mapping[str, Any], ranges: tuple[Range, ...], choices: tuple[str, ...] = ()
) -> dict[str, str]:
    """URL parameters for the values that differ from their defaults (ranges, and named choices)."""
    params = {}
    for name in choices:
        if name in values and values[name] != defaults.get(name):
            params[name] = str(values[name])
    for r in ranges:
        if r.name in values and values[r.name] != defaults.get(r.name):
            params[r.url_name] = format_value(values[r.name])
    return params


def from_params(params: Mapping[str, str], ranges: tuple[Range, ...]) -> tuple[dict[str, Any], list[str]]:
    """Values for the ranges named in `params`, snapped into range, and a note for each one changed or ignored."""
    values: dict[str, Any] = {}
    notes = []
    for r in ranges:
        raw = params.get(r.url_name)
        if raw is None:
            continue
        try:
            number = whole_number(raw.strip()) if r.is_int and whole_number(raw.strip()) is not None else float(raw)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            notes.append(f"{r.url_name}={raw[:20]!r} is not a number: ignored.")
            continue
        values[r.name] = r.snap(number)
        if values[r.name] != number:
            notes.append(
                f"{r.url_name}={raw[:20]} is outside {format_value(r.lo)}..{format_value(r.hi)}"
                f" (or off its step of {format_value(r.step)}): using {format_value(values[r.name])}."
            )
    return values, notes


def strategy_from_params(params: Mapping[str, str]) -> tuple[str | None, list[str]]:
    raw = params.get("strategy")
    if raw is None:
        return None, []
    if raw in STRATEGIES:
        return raw, []
    return None, [f"strategy={raw[:20]!r} is not one of {', '.join(STRATEGIES)}: ignored."]


EXPLAIN_METHOD_DEFAULT = "attention"  # the cheapest explanation: the decoding already reported it
METHOD_PARAM = "method"


def method_from_params(params: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """The Explain page's method from a URL (`method=occlusion`), with a note when it is not one."""
    from captioner.explain import METHODS

    raw = str(params.get(METHOD_PARAM, ""))
    if not raw:
        return None, []
    if raw in METHODS:
        return raw, []
    return None, [f"{METHOD_PARAM}={raw[:20]!r} is not one of {', '.join(METHODS)}: using {EXPLAIN_METHOD_DEFAULT}."]


def attention_to_params(values: Mapping[str, Any]) -> dict[str, str]:
    """The Explain page's layer and head as URL parameters, where they differ from the means."""
    params = {}
    for kind, default in ATTENTION_DEFAULTS.items():
        value = values.get(kind, default)
        if value != default:
            words = {v: k for k, v in ATTENTION_WORDS[kind].items()}
            params[kind] = words[value] if value in words else str(int(value) + 1)
    return params


def attention_from_params(params: Mapping[str, str], counts: Mapping[str, int]) -> tuple[dict[str, Any], list[str]]:
    """Layer and head back from a URL (`counts`: how many layers and heads the model has), with notes."""
    values: dict[str, Any] = {}
    notes = []
    for kind, count in counts.items():
        raw = str(params.get(kind, ""))
        if not raw:
            continue
        if raw in ATTENTION_WORDS[kind]:
            values[kind] = ATTENTION_WORDS[kind][raw]
        elif 1 <= (whole_number(raw) or 0) <= count:
            values[kind] = int(raw) - 1
        else:
            words = " or ".join(ATTENTION_WORDS[kind])
            notes.append(f"{kind}={raw[:20]!r} is not {words} or a number from 1 to {count}: ignored.")
    return values, notes


def whole_number(raw: str) -> int | None:
    """`raw` as a plain non-negative integer ("12"), None otherwise (signs, "²", "1e3", "" included)."""
    return int(raw) if raw.isascii() and raw.isdigit() else None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
