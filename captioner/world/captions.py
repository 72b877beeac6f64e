"""Facts and reference captions of a scene.

Caption grammar (canonical style first)::

    caption  := ["there is" | "there are"] chain ("and" chain)*
    chain    := mention (relation mention)*
    mention  := ("a" | "two" | "three") size colour shape[s]
    relation := "left of" | "right of" | "to the left of" | "to the right of" | "above" | "below"

A relation links the two mentions next to it: "a red circle left of a blue
square above a green star" says circle left of square and square above star.

Facts (hashable tuples) are what a complete caption must state:

- ``("object", size, colour, shape, k)`` for k = 1..count: one fact per object,
  so counts are facts ("two small blue squares" gives k = 1 and k = 2);
- ``("relation", (size, colour, shape), "left of" | "above", (size, colour, shape))``
  between objects that are consecutive in reading order (each object is left
  of or above all later ones). "A right of B" is stored as "B left of A" and
  "A below B" as "B above A", so paraphrases give equal fact sets.

Scenes where two objects look identical get no relation facts: their captions
only count objects ("two small blue squares and a big red circle").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable

from .render import COLOURS, SHAPES, SIZES, Scene, reading_order, relation

Attributes = tuple[str, str, str]  # (size, colour, shape)
Fact = tuple

PLURALS: dict[str, str] = {shape: shape + ("es" if shape.endswith("s") else "s") for shape in SHAPES}
NUMBER_WORDS: dict[int, str] = {1: "a", 2: "two", 3: "three"}
SIZE_SYNONYMS: dict[str, str] = {"small": "little", "big": "large"}

VOCABULARY: tuple[str, ...] = (
    *NUMBER_WORDS.values(),
    *SIZES,
    *SIZE_SYNONYMS.values(),
    *COLOURS,
    *SHAPES,
    *PLURALS.values(),
    "left",
    "right",
    "of",
    "to",
    "the",
    "above",
    "below",
    "and",
    "there",
    "is",
    "are",
)

CANONICAL_RELATIONS = ("left of", "above")
INVERSE_RELATION = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def object_facts(attributes: Iterable[Attributes]) -> set[Fact]:
    """One ``("object", size, colour, shape, k)`` fact per object, k counting equal ones."""
    facts = set()
    for (size, colour, shape), count in Counter(attributes).items():
        facts.update(("object", size, colour, shape, k) for k in range(1, count + 1))
    return facts


def relation_fact(a: Attributes, rel: str, b: Attributes) -> Fact:
    """Canonical fact for "a REL b" (right of / below are flipped to left of / above)."""
    if rel in ("right of", "below"):
        a, rel, b = b, INVERSE_RELATION[rel], a
    return ("relation", a, rel, b)


def has_identical_objects(scene: Scene) -> bool:
    """True when two objects share size, colour and shape."""
    attrs = [o.attributes for o in scene.objects]
    return len(set(attrs)) < len(attrs)


def scene_order(scene: Scene) -> list[int]:
    """Object indices in reading order (left/above first); sampled scenes always have one."""
    order = reading_order(scene.objects)
    if order is None:
        raise ValueError("scene has no clear reading order (was it built by sample_scene?)")
    return order


def scene_facts(scene: Scene) -> frozenset[Fact]:
    """The facts a complete caption must state (see module docstring)."""
    facts = object_facts(o.attributes for o in scene.objects)
    if not has_identical_objects(scene):
        order = scene_order(scene)
        for i, j in zip(order, order[1:]):
            a, b = scene.objects[i], scene.objects[j]
            facts.add(relation_fact(a.attributes, relation(a, b), b.attributes))  # type: ignore[arg-type]
    return frozenset(facts)


def all_true_facts(scene: Scene) -> frozenset[Fact]:
    """Every fact true of the image: scene_facts plus all clear pairwise relations.

    Use it as `allowed` in `fact_scores` to avoid counting a true but
    unrequired relation (e.g. first object left of the last one) as wrong.
    """
    facts = set(scene_facts(scene))
    for a in scene.objects:
        for b in scene.objects:
            rel = relation(a, b)
            if a.attributes != b.attributes and rel is not None:
                facts.add(relation_fact(a.attributes, rel, b.attributes))
    return frozenset(facts)


def mention_words(count: int, attrs: Attributes, synonyms: bool = False) -> str:
    """Words of one mention, e.g. "a small red circle" or "two large blue squares"."""
    size, colour, shape = attrs
    return " ".join(
        (NUMBER_WORDS[count], SIZE_SYNONYMS[size] if synonyms else size, colour, PLURALS[shape] if count > 1 else shape)
    )


def _there(first_count: int) -> str:
    return "there is" if first_count == 1 else "there are"


def reference_captions(scene: Scene) -> list[str]:
    """Three differently worded captions stating exactly `scene_facts(scene)`.

    0: canonical: reading order, "left of" / "above", small / big;
    1: reading order, "to the left of" / "above", little / large;
    2: "there is" + reverse order, "right of" / "below", small / big.
    """
    if has_identical_objects(scene):
        # groups of equal objects, largest group first, then in first appearance order
        groups = Counter(o.attributes for o in scene.objects).most_common()
        forward = " and ".join(mention_words(c, a) for a, c in groups)
        synonyms = " and ".join(mention_words(c, a, synonyms=True) for a, c in groups)
        backward = " and ".join(mention_words(c, a) for a, c in reversed(groups))
        return [forward, synonyms, f"{_there(groups[-1][1])} {backward}"]

    objs = [scene.objects[i] for i in scene_order(scene)]
    rels = [relation(a, b) for a, b in zip(objs, objs[1:])]  # "left of" or "above"

    def chain(objects: list, relations: list, synonyms: bool, long_form: bool) -> str:
        words = [mention_words(1, objects[0].attributes, synonyms)]
        for rel, obj in zip(relations, objects[1:]):
            words.append(f"to the {rel}" if long_form and rel in ("left of", "right of") else rel)
            words.append(mention_words(1, obj.attributes, synonyms))
        return " ".join(words)

    back_rels = [INVERSE_RELATION[r] for r in reversed(rels)]  # type: ignore[index]
    return [
        chain(objs, rels, synonyms=False, long_form=False),
        chain(objs, rels, synonyms=True, long_form=True),
        "there is " + chain(objs[::-1], back_rels, synonyms=False, long_form=False),
    ]


def fact_scores(pred_facts: Collection, true_facts: Collection, allowed: Collection | None = None) -> tuple[float, float]:
    """(precision, recall): share of stated facts that are true, share of true facts stated.

    `allowed` (default `true_facts`) is the set precision checks against, e.g.
    `all_true_facts(scene)` to accept true relations a caption need not state.
    Empty predictions get precision 0 (1 when nothing is true either).
    """
    pred, true = set(pred_facts), set(true_facts)
    ok = set(allowed) if allowed is not None else true
    precision = len(pred & ok) / len(pred) if pred else float(not true)
    recall = len(pred & true) / len(true) if true else 1.0
    return precision, recall
