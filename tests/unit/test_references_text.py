"""Reference captions typed on the Batch page (captioner/batch/references_text.py): parsing, caps, matching."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.batch.lists import MAX_REFERENCE_CHARS, MAX_REFERENCES
from captioner.batch.references_text import attach_references, name_keys, parse_references, references_for
from captioner.batch.rows import CaptionRow


def test_lines_name_files_and_their_captions():
    refs = parse_references("# comment\n\ncat.jpg: a cat | a grey cat\nsub/dog.png: a dog\ncat.jpg: one more")
    assert refs.captions == {"cat.jpg": ["a cat", "a grey cat", "one more"], "sub/dog.png": ["a dog"]}
    assert refs.lines == {"cat.jpg": 3, "sub/dog.png": 4} and not refs.problems
    assert references_for("archive.zip/cat.jpg", refs.captions) == refs.captions["cat.jpg"]
    assert references_for("dog", {"dog": ["x"]}) == ["x"]
    assert references_for("pack.zip/dog.png", {"dog": ["x"]}) == ["x"]  # the name without its extension
    assert references_for("other.png", refs.captions) == []
    assert name_keys("a\\b\\c.tar.png") == ("a\\b\\c.tar.png", "c.tar.png", "c.tar")


def test_malformed_and_unmatched_reference_lines_are_named_and_the_rest_kept():
    refs = parse_references("a.png: a red square\nnonsense without a colon\nghost.png: x\nb: a blue circle\nc.png:  | ")
    assert refs.captions == {"a.png": ["a red square"], "ghost.png": ["x"], "b": ["a blue circle"]}
    assert [p.split(" should")[0] for p in refs.problems] == ["Reference line 2", "Reference line 5"]
    rows = [CaptionRow("a.png", caption="a red square"), CaptionRow("pack.zip/b.png", caption="a blue circle")]
    with_refs, unmatched = attach_references(rows, refs, {"a.png": ("an example's own",)})
    assert [r.references for r in with_refs] == [["a red square"], ["a blue circle"]]  # typed lines win
    assert unmatched == ["Reference line 3 names 'ghost.png', which is not in the batch."]
    _, unmatched = attach_references(rows[:1], refs, batch_names=["ghost.png", "b.png"])
    assert unmatched == []  # names of files not captioned yet are in the batch too
    with_known, _ = attach_references([CaptionRow("c.png")], parse_references(""), {"c.png": ("the example's",)})
    assert with_known[0].references == ["the example's"]


def test_typed_lines_keep_the_list_files_caps():
    """A typed line is read as a row of a list file is: too many or too long references skip that line only."""
    many = " | ".join(f"r{i}" for i in range(MAX_REFERENCES + 1))
    text = f"a.png: {many}\nb.png: {'x' * (MAX_REFERENCE_CHARS + 1)}\nc.png: fine | also fine"
    refs = parse_references(text)
    assert refs.captions == {"c.png": ["fine", "also fine"]}
    assert [p.split(" is skipped")[0] for p in refs.problems] == ["Reference line 1", "Reference line 2"]
    assert f"the limit is {MAX_REFERENCES}" in refs.problems[0] and f"{MAX_REFERENCE_CHARS:,}" in refs.problems[1]


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(st.text(alphabet="ab.:|# \n", max_size=20), max_size=6))
def test_every_line_is_kept_or_named(lines):
    """Each non-blank, non-comment line either gives a name its captions or is named in one problem."""
    text = "\n".join(lines)
    refs = parse_references(text)
    named = [int(re.match(r"Reference line (\d+) ", p).group(1)) for p in refs.problems]
    assert len(named) == len(set(named))
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            assert number not in named
        elif number not in named:
            assert line.partition(":")[0].strip() in refs.captions
    assert all(caps and all(c == c.strip() and c and "|" not in c for c in caps) for caps in refs.captions.values())


@settings(derandomize=True, deadline=None, max_examples=40)
@given(per_line=st.lists(st.integers(1, 30), min_size=1, max_size=40))
def test_lines_that_repeat_a_name_do_not_add_up_past_the_reference_cap(per_line):
    # Each line was held to the cap, but "cat: a" written 5,000 times gave cat 5,000 references.
    refs = parse_references("\n".join("cat: " + " | ".join(f"r{i}" for i in range(n)) for n in per_line))
    total, skipped = 0, []
    for number, n in enumerate(per_line, 1):  # a line is kept while the name's total stays within the cap
        if total + n <= MAX_REFERENCES:
            total += n
        else:
            skipped.append(f"Reference line {number} is skipped: 'cat' would have more than {MAX_REFERENCES} references.")
    assert len(refs.captions.get("cat", [])) == total <= MAX_REFERENCES
    assert refs.problems == skipped


SEGMENT = st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters="_- ."), min_size=1, max_size=8).filter(
    lambda s: s.strip() == s
)


@settings(derandomize=True, deadline=None, max_examples=60)
@given(drive=st.sampled_from("CDcz"), folders=st.lists(SEGMENT, max_size=3), stem=SEGMENT, slash=st.sampled_from("\\/"))
def test_a_windows_path_names_its_file_and_not_its_drive_letter(drive, folders, stem, slash):
    # "C:\photos\cat.jpg: a cat" was read as the name "C" with the caption "\photos\cat.jpg: a cat".
    path = f"{drive}:{slash}" + "".join(f + slash for f in folders) + stem + ".jpg"
    refs = parse_references(f"{path}: a cat | a grey cat")
    assert refs.captions == {path: ["a cat", "a grey cat"]} and not refs.problems
    rows, unmatched = attach_references([CaptionRow(path, caption="a cat")], refs)
    assert rows[0].references == ["a cat", "a grey cat"] and not unmatched
    assert attach_references([CaptionRow("other.jpg")], refs)[1] == [
        f"Reference line 1 names {path!r}, which is not in the batch."
    ]


def test_a_one_letter_name_is_still_a_name():
    # One letter, a colon and at once a slash reads as a drive ("b:/ a slash" is a path with no caption).
    assert parse_references("a: a cat\nb:/ a slash").captions == {"a": ["a cat"]}
    assert parse_references("x: /dev/null as a caption").captions == {"x": ["/dev/null as a caption"]}
