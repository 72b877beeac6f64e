"""Parse captions of the scene world back into facts and object mentions.

The parser accepts the grammar of `captions.py` and never raises: unknown
words or broken structure are reported in `ParsedCaption.errors` (and
`fully_parsed` is False) while everything readable is still returned.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .captions import PLURALS, SIZE_SYNONYMS, Fact, object_facts, relation_fact
from .render import COLOURS, SHAPES, SIZES, Scene

_COUNTS = {"a": 1, "one": 1, "two": 2, "three": 3}
_SIZES = {**{s: s for s in SIZES}, **{syn: s for s, syn in SIZE_SYNONYMS.items()}}
_SHAPES = {**{s: (s, False) for s in SHAPES}, **{p: (s, True) for s, p in PLURALS.items()}}  # word -> (shape, plural)
_RELATIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("to", "the", "left", "of"), "left of"),
    (("to", "the", "right", "of"), "right of"),
    (("left", "of"), "left of"),
    (("right", "of"), "right of"),
    (("above",), "above"),
    (("below",), "below"),
)


@dataclass(frozen=True)
class Mention:
    """One object phrase such as "two small blue squares"; indices are word positions."""

    count: int
    size: str | None  # None when the caption leaves the size out
    colour: str
    shape: str
    start: int  # first word
    end: int  # one past the last word
    size_index: int | None
    colour_index: int
    shape_index: int

    @property
    def attributes(self) -> tuple[str | None, str, str]:
        return (self.size, self.colour, self.shape)


@dataclass(frozen=True)
class ParsedCaption:
    """What a caption says: facts (canonical, as in `scene_facts`), mentions, relations."""

    words: tuple[str, ...]
    mentions: tuple[Mention, ...]
    relations: tuple[tuple[int, str, int], ...]  # (mention index, relation as written, mention index)
    facts: frozenset[Fact]
    fully_parsed: bool
    errors: tuple[str, ...]


def _match_relation(words: list[str], i: int) -> tuple[str | None, int]:
    for phrase, rel in _RELATIONS:
        if tuple(words[i : i + len(phrase)]) == phrase:
            return rel, i + len(phrase)
    return None, i


def _parse_mention(words: list[str], i: int, errors: list[str]) -> tuple[Mention | None, int]:
    """Parse "det [size] colour shape" at word i; returns (mention or None, next index)."""
    start = i
    count = 1
    if i < len(words) and words[i] in _COUNTS:
        count = _COUNTS[words[i]]
        i += 1
    else:
        errors.append(f"word {i}: expected 'a', 'two' or 'three'")
    size = size_index = None
    if i < len(words) and words[i] in _SIZES:
        size, size_index = _SIZES[words[i]], i
        i += 1
    if i >= len(words) or words[i] not in COLOURS:
        errors.append(f"word {i}: expected a colour")
        return None, max(i, start + 1)
    colour, colour_index = words[i], i
    i += 1
    if i >= len(words) or words[i] not in _SHAPES:
        errors.append(f"word {i}: expected a shape")
        return None, i
    shape, plural = _SHAPES[words[i]]
    if plural != (count > 1):
        errors.append(f"word {i}: number of {words[i]!r} does not agree with the count")
    if size is None:
        errors.append(f"word {colour_index}: size missing")
    mention = Mention(count, size, colour, shape, start, i + 1, size_index, colour_index, i)
    return mention, i + 1


def parse_caption(text: str) -> ParsedCaption:
    """Parse a caption; never raises. Word indices refer to `text.split()`."""
    words = text.lower().split()
    errors: list[str] = []
    mentions: list[Mention] = []
    relations: list[tuple[int, str, int]] = []
    i = 0
    if words[:2] in (["there", "is"], ["there", "are"]):
        i = 2
    expect_mention = True
    previous: int | None = None  # mention a following relation attaches to
    pending: str | None = None  # relation waiting for its second mention
    while i < len(words):
        if expect_mention:
            mention, i = _parse_mention(words, i, errors)
            if mention is None:  # resynchronise at the next count word
                while i < len(words) and words[i] not in _COUNTS:
                    i += 1
                previous = pending = None
                continue
            mentions.append(mention)
            if pending is not None and previous is not None:
                relations.append((previous, pending, len(mentions) - 1))
            previous, pending, expect_mention = len(mentions) - 1, None, False
            continue
        rel, j = _match_relation(words, i)
        if rel is not None:
            pending, i, expect_mention = rel, j, True
        elif words[i] == "and":
            previous, i, expect_mention = None, i + 1, True
        else:
            errors.append(f"word {i}: unexpected {words[i]!r}")
            i += 1
            while i < len(words) and words[i] not in _COUNTS:
                i += 1
            previous, expect_mention = None, True
    if not mentions:
        errors.append("no object mentioned")
    elif expect_mention and (pending is not None or words[-1] == "and"):
        errors.append("caption ends in the middle of a phrase")

    counts: Counter = Counter()
    for m in mentions:
        counts[m.attributes] += m.count
    facts = object_facts(counts.elements())
    for a, rel, b in relations:
        facts.add(relation_fact(mentions[a].attributes, rel, mentions[b].attributes))  # type: ignore[arg-type]
    return ParsedCaption(tuple(words), tuple(mentions), tuple(relations), frozenset(facts), not errors, tuple(errors))


def match_mentions_to_objects(
    parsed: ParsedCaption, scene: Scene, include_size: bool = False
) -> list[tuple[int, tuple[int, ...]]]:
    """For each colour and shape word (and size word if asked): the objects it describes.

    Returns (word index, indices of scene objects whose size, colour and shape
    all equal the mention's) in word order; the tuple is empty when no object
    fits. A mention without size matches objects of any size.
    """
    pairs: list[tuple[int, tuple[int, ...]]] = []
    for m in parsed.mentions:
        objects = tuple(
            k
            for k, o in enumerate(scene.objects)
            if o.colour == m.colour and o.shape == m.shape and (m.size is None or o.size == m.size)
        )
        indices = [m.colour_index, m.shape_index]
        if include_size and m.size_index is not None:
            indices.insert(0, m.size_index)
        pairs.extend((idx, objects) for idx in indices)
    return pairs
