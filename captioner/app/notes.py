"""The notes shown beside a caption, naming the real cause: the image, the user's settings, or the token limit.

No Streamlit here. The out-of-world flag judges the image, so it is read from the caption the model's
own decoding gives (`reference`: what `python -m captioner` prints with no options), never from the
user's settings: sampling at temperature 2 or a no-repeat size of 1 makes any caption unsure, and
that is said as the settings' doing, naming them.
"""

from __future__ import annotations

from collections.abc import Sequence

from captioner.app.settings import DECODING_RANGES, STRATEGY_NAMES, Range, format_value
from captioner.config import DecodingConfig
from captioner.decoding import Caption

OUT_OF_WORLD_NOTE = "This image does not look like the built-in model's world of coloured shapes; the caption is a guess."
# Settings that shape only the output, not the caption: never a cause.
_NOT_CAUSES = ("max_new_tokens", "seed")


def plural(count: int, word: str) -> str:
    """'1 token', '2 tokens'."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def changed_settings(config: DecodingConfig, default: DecodingConfig, ranges: Sequence[Range] = DECODING_RANGES) -> list[str]:
    """The settings of `config` that differ from the model's own `default` and change which caption comes out,
    as they read on the page ('sampling', 'temperature 2', 'no-repeat n-gram size 1'); the seed with sampling."""
    out = []
    if config.strategy != default.strategy:
        out.append(STRATEGY_NAMES.get(config.strategy, config.strategy).lower())
    for r in ranges:
        if r.name in _NOT_CAUSES or config.strategy not in r.applies_to:
            continue
        mine = getattr(config, r.name)
        if mine != getattr(default, r.name):
            out.append(f"{r.label.lower()} {format_value(mine)}")
    if out and config.strategy == "sample":
        out.append(f"seed {config.seed}")
    return out


def _listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def looks_out_of_world(caption: Caption, reference: Caption | None) -> bool:
    """The image looks outside the model's world: judged on the model's own decoding when there is one."""
    return bool((reference or caption).out_of_world)


def confidence_note(caption: Caption, reference: Caption | None, changed: Sequence[str]) -> str | None:
    """When the caption is unsure because of the user's settings (the model's own decoding of the same image
    is not), say so and name them; None otherwise."""
    if reference is None or reference.out_of_world or not caption.out_of_world or not changed:
        return None
    return (
        f"The model is unsure of this caption (confidence {caption.confidence:.2f}, against "
        f"{reference.confidence:.2f} with its own settings) because of your {_listed(changed)}; "
        "the image itself looks like its world."
    )


def limit_note(
    caption: Caption, config: DecodingConfig, slider_end: int, reference: Caption | None, changed: Sequence[str]
) -> str | None:
    """Why the caption stopped at the token limit, and what would let it end: the setting that kept it from
    ending when the model's own decoding ends in fewer tokens, else more tokens when the slider has more."""
    if not caption.hit_limit:
        return None
    most = config.max_new_tokens
    text = f"The caption stopped at the limit of {plural(most, 'token')} instead of ending by itself: it may be cut short."
    if changed and reference is not None and reference.finished and len(reference.token_ids) <= most:
        return (
            text + f" With the model's own settings it ends by itself after {plural(len(reference.token_ids), 'token')}: "
            f"your {_listed(changed)} kept it from ending."
        )
    if most < slider_end:
        return text + f" Raise *Max new tokens* (up to {slider_end}) to let it finish."
    return text + " That is the most this model holds."


def caption_notes(
    caption: Caption,
    config: DecodingConfig,
    reference: Caption | None = None,
    default: DecodingConfig | None = None,
    slider_end: int | None = None,
) -> list[str]:
    """The notes beside a caption: the image outside the model's world (judged on `reference`, the model's own
    decoding), low confidence from the settings, and a stop at the token limit, each naming its cause."""
    changed = changed_settings(config, default) if default is not None else []
    notes = [OUT_OF_WORLD_NOTE] if looks_out_of_world(caption, reference) else []
    notes.append(confidence_note(caption, reference, changed))
    notes.append(limit_note(caption, config, config.max_new_tokens if slider_end is None else slider_end, reference, changed))
    return [n for n in notes if n]
