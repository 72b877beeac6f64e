"""The app's help texts: how to read each page, and what the built-in model knows.

tests/unit/test_views.py checks the built-in model's words against captioner.world (the app never imports it).
"""

from __future__ import annotations

HOW_TO_READ = {
    "caption": (
        "Each token of the caption is coloured by the probability the model gave it when it chose it: "
        "red unlikely, yellow unsure, green certain (hover a token for the number). **Confidence** is the "
        "geometric mean of those probabilities. A caption that stopped at *Max new tokens* instead of "
        "ending by itself is marked. The controls on the left start at the model's own settings; greyed "
        "ones do not apply to the chosen strategy."
    ),
    "compare": (
        "Each row decodes the same image another way. **Log-prob** is what the model itself thinks of "
        "the caption: compare rows by it. **Score** is what each strategy ranked its candidates by (see "
        "*score uses*). **Distinct-1/2** are the share of unique words and word pairs among a "
        "strategy's samples: higher means more varied. The chart shows how sure the model was of each "
        "token; lines that coincide are drawn side by side."
    ),
    "explain": (
        "The bars are the probability of the chosen token at each step, the line the entropy of the "
        "model's whole next-token distribution (0 = certain; higher = spread over many tokens). The "
        "heatmaps show cross-attention: how much the decoder's query for a word weighed each image "
        "patch. Bright = most of that word's attention, each map scaled to its own range. Attention "
        "shows where the model looked, not why it chose the word: a bright patch is not proof the "
        "model 'saw' the object there."
    ),
    "batch": (
        "Each file is captioned with the Caption page's settings. With reference captions (one line "
        "per file, or the examples' own), each row gets its BLEU-4 and whether it matches a reference "
        "word for word, and the batch gets corpus BLEU-4 and CIDEr-D (higher is better; 1.0 BLEU-4 is "
        "a perfect match). Files that cannot be used are listed with the reason."
    ),
}

BUILTIN_SHAPES = ("circle", "square", "triangle", "star", "cross")
BUILTIN_COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "white", "black")
BUILTIN_SIZES = ("small", "big")
BUILTIN_RELATIONS = ("left of", "right of", "above", "below")
BUILTIN_NOTE = (
    "**The built-in model** knows only its own world of rendered scenes: 1 to 3 objects, "
    f"{len(BUILTIN_SHAPES)} shapes ({', '.join(BUILTIN_SHAPES)}), {len(BUILTIN_COLOURS)} colours "
    f"({', '.join(BUILTIN_COLOURS)}), {len(BUILTIN_SIZES)} sizes ({' and '.join(BUILTIN_SIZES)}), "
    f"placed {', '.join(BUILTIN_RELATIONS[:-1])} or {BUILTIN_RELATIONS[-1]} one another. "
    "Pick a scene from the examples in the sidebar to see it at its best."
)
BUILTIN_SHORT = (
    f"The built-in model knows scenes of 1 to 3 objects: {len(BUILTIN_SHAPES)} shapes, {len(BUILTIN_COLOURS)} "
    f"colours, {len(BUILTIN_SIZES)} sizes, {' / '.join(BUILTIN_RELATIONS)}. Try the example images."
)
