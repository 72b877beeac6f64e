"""How far to trust each explanation method: one line each, from the measured figures in docs/explain.md.

Measured by `python -m captioner.explain.bench --scenes 100` on the built-in model, first renderer (100 scenes;
chance pointing 11%, random-order deletion area 0.732), beside the model trained without the
attention loss (pointing in brackets). Rerun the bench and update these lines together with docs/explain.md.
"""

from __future__ import annotations

BENCH = "`python -m captioner.explain.bench`, 100 scenes"

TRUST = {
    "attention": "Points at the right object 97% of the time on the built-in model (79% on one trained without "
    "the attention loss), deletion area 0.325: the cheapest, and here the most faithful.",
    "relevance": "Points right 93% (64% without the attention loss), deletion area 0.345: "
    "about as faithful as attention, at about 2 to 3 times its cost.",
    "gradcam": "Points right 75% (39% without the attention loss), deletion area 0.582: "
    "the weakest of the four; read it as a rough hint.",
    "occlusion": "Points right 89% (71% without the attention loss), deletion area 0.570: "
    "model-agnostic but slow (one caption pass per cell).",
}


def trust_line(method: str) -> str:
    """One line on how well `method` did in the benchmark (chance pointing 11%, random deletion area 0.732)."""
    return f"{TRUST[method]} Chance: 11% and 0.732 ({BENCH})."
