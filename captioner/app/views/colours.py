"""The app's colours, all from Plotly's scales (`plotly.colors`): token probabilities on RdYlGn, attention
on Inferno, and the small colour bars that explain them."""

from __future__ import annotations

import html
import math

import numpy as np
import plotly.colors as pc

PROB_SCALE = "RdYlGn"  # token backgrounds: red unlikely, yellow, green certain
PROB_SPAN = (0.1, 0.9)  # the part of the scale used (its darkest ends would hide the text)
PROB_LIGHTEN = 0.5  # mixed with white, so dark text stays readable
HEAT_SCALE = "Inferno"  # attention: dark little, bright most
# The same scale in rgb() form for figures: Streamlit's Plotly theme swaps the hex colours #000001..#000030
# for its own (placeholders), and Inferno starts at #000004, which would come out pink.
HEAT_COLORSCALE = [
    [pos, pc.convert_colors_to_same_type(colour, "rgb")[0][0]] for pos, colour in pc.make_colorscale(pc.sequential.Inferno)
]
_WHITE = (255.0, 255.0, 255.0)


def _rgb(colour: str) -> tuple[float, float, float]:
    return pc.unlabel_rgb(pc.convert_colors_to_same_type(colour, "rgb")[0][0])


_HEAT_LUT = np.array([_rgb(c) for c in pc.sample_colorscale(HEAT_SCALE, list(np.linspace(0, 1, 256)))], dtype=np.float32)


def prob_color(p: float) -> str:
    """Background colour for a token from Plotly's RdYlGn scale, lightened so dark text stays readable."""
    p = min(max(float(p), 0.0), 1.0) if math.isfinite(p) else 0.0
    lo, hi = PROB_SPAN
    colour = _rgb(pc.sample_colorscale(PROB_SCALE, [lo + (hi - lo) * p])[0])
    r, g, b = pc.find_intermediate_color(colour, _WHITE, PROB_LIGHTEN)
    return f"rgb({round(r)}, {round(g)}, {round(b)})"


def colorize(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB through Plotly's Inferno scale."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0, 1)
    return _HEAT_LUT[np.round(v * 255).astype(int)].round().astype(np.uint8)


def scale_legend_html(scale: str, left: str, right: str, lighten: float = 0.0, span: tuple[float, float] = (0, 1)) -> str:
    """A small horizontal colour bar for (the `span` of) a Plotly scale, with a label at each end."""
    stops = [_rgb(c) for c in pc.sample_colorscale(scale, list(np.linspace(*span, 9)))]
    stops = [pc.find_intermediate_color(c, _WHITE, lighten) for c in stops]
    gradient = ", ".join(f"rgb({round(r)},{round(g)},{round(b)})" for r, g, b in stops)
    return (
        '<div style="display:flex;align-items:center;gap:0.5rem;font-size:0.85rem;opacity:0.75">'
        f"<span>{html.escape(left)}</span>"
        f'<span style="flex:0 1 12rem;height:0.8rem;border-radius:3px;background:linear-gradient(to right, {gradient})"></span>'
        f"<span>{html.escape(right)}</span></div>"
    )


def token_legend_html() -> str:
    """The colour bar beside token-coloured captions: p = 0 to 1 as the tokens are coloured."""
    return scale_legend_html(PROB_SCALE, "p = 0 (unlikely)", "1 (certain)", PROB_LIGHTEN, PROB_SPAN)


def heat_legend_html(what: str = "attention") -> str:
    """The colour bar beside heatmaps: little to most of `what` (attention, or an explanation's word for it)."""
    return scale_legend_html(HEAT_SCALE, f"little {what}", f"most {what}")
