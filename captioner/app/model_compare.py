"""The Models page's data: which models to compare, their settings, the side-by-side table, exports, the URL.

No Streamlit here (like views/): the page draws what these functions return. A model is named by the
same specs the sidebar's picker takes ('builtin', a checkpoint file, a model folder, a hub id), told
apart by `captioner.loading.spec_kind`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from captioner.app import settings
from captioner.app.model_text import DEFAULT_SPEC
from captioner.app.views.compare import num_tokens
from captioner.app.views.records import caption_record
from captioner.app.views.text import config_label, milliseconds, token_label
from captioner.config import MAX_NUM_BEAMS, DecodingConfig
from captioner.decoding import DecodeResult
from captioner.loading import spec_kind
from captioner.models.base import CaptionModel, ModelInfo

MIN_MODELS, MAX_MODELS = 2, 4
DEFAULT_SPECS = ("builtin",)
KIND_NAMES = {
    "builtin": "built-in",
    "file": "checkpoint file",
    "folder": "model folder",
    "hub": "Hugging Face hub",
    "missing": "no such path",
    "other": "not a file or folder",
    "empty": "",
}
SHARED_STRATEGIES = ("greedy", "beam")
SHARED_RANGES: tuple[settings.Range, ...] = (
    settings.Range("num_beams", "Beams", 2, MAX_NUM_BEAMS, 1, ("beam",), param="models_beams"),
    settings.Range(
        "max_new_tokens",
        "Max new tokens",
        1,
        64,
        1,
        param="models_tokens",
        help="Each model stops at what it can hold, if that is less.",
    ),
)
SHARED_DEFAULTS: dict[str, Any] = {"strategy": "greedy", "num_beams": 3, "max_new_tokens": 24}
# URL parameters: the models (repeated, in order), "own" defaults instead of the same settings, the shared ones.
MODELS_PARAM, SETTINGS_PARAM, OWN, STRATEGY_PARAM = "models", "model_settings", "own", "models_strategy"

HOW_TO_READ = (
    "Each column is one model captioning the same image. **Same settings for all** decodes every model with the "
    "settings below (greedy or beam search, one token limit, cut to what each model can hold); **each model's own "
    "defaults** uses the decoding settings that came with each model, so the captions show each model as its "
    "authors set it up. **confidence** is the geometric mean of the caption's token probabilities, **log-prob** "
    "their sum (longer captions have lower log-probs), **tokens** count the end token, **time** is the decoding "
    "of that caption alone. **out of world** is shown only for models with a calibration (the built-in one): "
    "*yes* means the image looks unlike anything it was trained on. Loaded models share a memory budget: when a "
    "new one does not fit, the least recently used is unloaded (a note says so) and loaded again when needed."
)


def parse_specs(text: str) -> tuple[list[str], list[str]]:
    """The models named in `text` (one per line, or separated by commas), in order, each once, at most
    MAX_MODELS; and a note for what was dropped."""
    specs: list[str] = []
    for line in str(text).replace(",", "\n").splitlines():
        spec = line.strip()
        if spec and spec not in specs:
            specs.append(spec)
    notes = []
    if len(specs) > MAX_MODELS:
        notes.append(
            f"At most {MAX_MODELS} models side by side: comparing the first {MAX_MODELS}, not {', '.join(specs[MAX_MODELS:])}."
        )
    return specs[:MAX_MODELS], notes


def kind_name(spec: str) -> str:
    """What kind of model a spec names, in words ('model folder', 'Hugging Face hub', ...)."""
    if spec == DEFAULT_SPEC:  # the app's own word for the model resolved at start-up, not a path
        return "the default model"
    return KIND_NAMES.get(spec_kind(spec), "")


def config_for(model: CaptionModel, shared: Mapping[str, Any] | None) -> tuple[DecodingConfig, list[str]]:
    """The configuration one model is decoded with: the shared settings (fitted to its token limit, with a
    note when cut), or its own defaults when `shared` is None. One caption, no attention maps."""
    limit = settings.token_limit(model.max_new_tokens_limit)
    notes = []
    if shared is None:
        config = model.default_decoding.with_(max_new_tokens=min(model.default_decoding.max_new_tokens, limit))
    else:
        tokens = int(shared["max_new_tokens"])
        if tokens > limit:
            notes.append(f"Holds at most {limit} tokens: decoded with {limit}, not {tokens}.")
        beam = shared["strategy"] == "beam"
        config = DecodingConfig(
            strategy="beam" if beam else "greedy",
            num_beams=int(shared["num_beams"]) if beam else 1,
            max_new_tokens=min(tokens, limit),
        )
    return config.with_(num_return_sequences=1, output_attentions=False, num_alternatives=1, seed=0), notes


@dataclass
class ModelOutcome:
    """One column: the spec, what loaded (info), its result, or the one line saying why there is none."""

    spec: str
    info: ModelInfo | None = None
    result: DecodeResult | None = None
    error: str = ""
    calibrated: bool = False

    @property
    def name(self) -> str:
        return self.info.name if self.info is not None else self.spec


def out_of_world_text(result: DecodeResult) -> str:
    """'yes' / 'no' from the model's calibration; '' when the model has none."""
    flag = result.best.out_of_world
    return "" if flag is None else ("yes" if flag else "no")


def caption_seconds(result: DecodeResult) -> float:
    """The time of this one caption: preprocessing, encoding and decoding."""
    return sum(result.timings.get(k, 0.0) for k in ("preprocess", "encode", "decode"))


def summary_table(outcomes: Sequence[ModelOutcome]) -> pd.DataFrame:
    """One row per model: its caption, confidence, log-prob, tokens, time and out-of-world flag (or its error)."""
    rows = []
    for o in outcomes:
        row: dict[str, Any] = {"model": o.spec, "kind": kind_name(o.spec), "family": o.info.family if o.info is not None else ""}
        if o.result is None:
            row.update({"caption": "", "error": o.error})
        else:
            best = o.result.best
            row.update(
                {
                    "caption": best.text + (" ✂" if best.hit_limit else ""),
                    "settings": config_label(o.result.config),
                    "confidence": round(best.confidence, 3),
                    "log-prob": round(best.logprob, 3),
                    "tokens": num_tokens(best),
                    "time (s)": round(caption_seconds(o.result), 3),
                    "out of world": out_of_world_text(o.result),
                    "error": "",
                }
            )
        rows.append(row)
    columns = [
        "model",
        "kind",
        "family",
        "caption",
        "settings",
        "confidence",
        "log-prob",
        "tokens",
        "time (s)",
        "out of world",
        "error",
    ]
    table = pd.DataFrame(rows, columns=columns)
    return table if table["error"].astype(bool).any() else table.drop(columns="error")


def comparison_record(outcomes: Sequence[ModelOutcome], image_name: str, same_settings: bool) -> dict[str, Any]:
    """The page's JSON: the image, the switch, and per model what it is and its caption record (or its error)."""
    models = []
    for o in outcomes:
        entry: dict[str, Any] = {"spec": o.spec, "kind": kind_name(o.spec)}
        if o.info is not None:
            entry["model"] = {"name": o.info.name, "family": o.info.family, "source": o.info.source, "dtype": o.info.dtype}
        if o.result is None:
            entry["error"] = o.error
        else:
            record = caption_record(o.result)
            record.pop("image")
            entry.update(record, confidence=o.result.best.confidence, out_of_world=o.result.best.out_of_world)
        models.append(entry)
    return {"image": image_name, "settings": "same for all" if same_settings else "each model's own defaults", "models": models}


def prob_figure(result: DecodeResult) -> go.Figure:
    """One model's per-token probabilities, small: one of the page's small multiples (same axes in each).

    Steps are numbered on x (a narrow column has no room for the tokens); hovering a point names its token."""
    best = result.best
    steps = list(range(1, len(best.tokens) + 1))
    fig = go.Figure(
        go.Scatter(
            x=steps,
            y=best.token_probs,
            mode="lines+markers",
            text=[token_label(t) for t in best.tokens],
            marker={"size": 6},
            hovertemplate="step %{x}: <b>%{text}</b><br>p = %{y:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        height=220,
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": "token probabilities", "font": {"size": 13}},
        xaxis={"title": "step", "range": [0.5, max(len(steps), 1) + 0.5], "tickformat": "d"},
        yaxis={"title": "p", "range": [0, 1.05], "tickformat": ".1f"},
    )
    return fig


def short_name(spec: str) -> str:
    """A column's title: the spec, or for a path its last two parts (the full path is shown under it)."""
    if spec_kind(spec) in ("file", "folder", "missing", "other"):
        parts = PurePath(spec).parts
        return "/".join(parts[-2:]) if len(parts) > 1 else spec
    return spec


def figures_line(result: DecodeResult) -> str:
    """The caption's numbers in one markdown line: confidence, log-prob, tokens, time, and the flag if calibrated."""
    best = result.best
    parts = [
        f"confidence **{best.confidence:.2f}**",
        f"log-prob **{best.logprob:.2f}**",
        f"**{num_tokens(best)}** tokens",
        f"**{milliseconds(caption_seconds(result))}**",
    ]
    if best.out_of_world is not None:
        parts.append("**out of world**" if best.out_of_world else "in its world")
    return " · ".join(parts)


def to_params(specs: Sequence[str], same: bool, shared: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """The page's URL parameters: the models, the switch when off, the shared settings that differ from their defaults."""
    params: dict[str, str | list[str]] = {}
    if list(specs) != list(DEFAULT_SPECS):
        params[MODELS_PARAM] = list(specs)
    if not same:
        params[SETTINGS_PARAM] = OWN
    elif shared:
        if shared.get("strategy", "greedy") != SHARED_DEFAULTS["strategy"]:
            params[STRATEGY_PARAM] = str(shared["strategy"])
        params.update(settings.to_params(shared, SHARED_DEFAULTS, SHARED_RANGES))
    return params


def from_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The page's state from URL parameters (`models` as a list): widget values by name, and notes on what was
    changed or ignored. Only what the URL holds is returned."""
    values: dict[str, Any] = {}
    notes: list[str] = []
    raw_models = params.get(MODELS_PARAM) or []
    if raw_models:
        specs, notes = parse_specs("\n".join(str(m) for m in raw_models))
        values["specs"] = "\n".join(specs)
    raw_settings = params.get(SETTINGS_PARAM)
    if raw_settings is not None:
        values["same"] = raw_settings != OWN
        if raw_settings != OWN:
            notes.append(f"{SETTINGS_PARAM}={str(raw_settings)[:20]!r} is not {OWN!r}: using the same settings for all.")
    strategy = params.get(STRATEGY_PARAM)
    if strategy is not None:
        if strategy in SHARED_STRATEGIES:
            values["strategy"] = strategy
        else:
            notes.append(f"{STRATEGY_PARAM}={str(strategy)[:20]!r} is not one of {', '.join(SHARED_STRATEGIES)}: using greedy.")
    shared, more = settings.from_params({k: v for k, v in params.items() if isinstance(v, str)}, SHARED_RANGES)
    return {**values, **shared}, notes + more
