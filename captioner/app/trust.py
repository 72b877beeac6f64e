"""How far to trust each explanation method: one line each, from the measured figures in docs/explain.md.

Measured by `python -m captioner.explain.bench --scenes 6` on the built-in model, first renderer (6 scenes,
33 words; chance pointing 12%, random-order deletion area 0.719), beside the model trained without the
attention loss (pointing in brackets). Rerun the bench and update these lines together with docs/explain.md.
"""

from __future__ import annotations

BENCH = "`python -m captioner.explain.bench`, 6 scenes"

TRUST = {
    "attention": "Points at the right object 100% of the time on the built-in model (76% on one trained without "
                 "the attention loss), deletion area 0.225: the cheapest, and here the most faithful.",
    "relevance": "Points right 100% (67% without the attention loss), deletion area 0.291: "
                 "about as faithful as attention, at about 3 times its cost.",
    "gradcam": "Points right 76% (15% without the attention loss), deletion area 0.588: "
               "the weakest of the four; read it as a rough hint.",
    "occlusion": "Points right 100% (82% without the attention loss, the best there), deletion area 0.481: "
                 "model-agnostic but slow (one caption pass per cell).",
}


def trust_line(method: str) -> str:
    """One line on how well `method` did in the benchmark (chance pointing 12%, random deletion area 0.719)."""
    return f"{TRUST[method]} Chance: 12% and 0.719 ({BENCH})."
