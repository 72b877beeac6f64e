"""The notes beside a caption (captioner/app/notes.py) name the real cause: the image, the settings or the limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from captioner.app import notes
from captioner.config import DecodingConfig
from captioner.decoding import Caption

BUILTIN_DEFAULT = DecodingConfig(strategy="greedy", max_new_tokens=24, no_repeat_ngram_size=10)


def caption(n_tokens: int, finished: bool = True, out_of_world: bool | None = False, confidence: float = 0.9) -> Caption:
    tokens = [" a"] * n_tokens
    return Caption(
        text="a " * n_tokens,
        token_ids=list(range(n_tokens)),
        tokens=tokens,
        token_probs=[0.9] * n_tokens,
        processed_probs=[0.9] * n_tokens,
        entropies=[0.1] * n_tokens,
        alternatives=[[]] * n_tokens,
        score=-1.0,
        logprob=-1.0,
        finished=finished,
        confidence=confidence,
        out_of_world=out_of_world,
    )


def test_settings_that_make_the_model_unsure_are_named_and_the_image_is_not_blamed():
    hot = BUILTIN_DEFAULT.with_(strategy="sample", temperature=2.0, seed=8)
    mine = caption(6, out_of_world=True, confidence=0.3)
    own = caption(6, out_of_world=False, confidence=0.95)
    said = notes.caption_notes(mine, hot, own, BUILTIN_DEFAULT, 31)
    assert notes.OUT_OF_WORLD_NOTE not in said
    assert len(said) == 1 and "sampling" in said[0] and "temperature 2" in said[0] and "seed 8" in said[0]
    assert "0.30" in said[0] and "0.95" in said[0]


def test_an_image_outside_the_world_is_said_whatever_the_settings():
    for mine_flag in (True, False):
        said = notes.caption_notes(
            caption(5, out_of_world=mine_flag),
            BUILTIN_DEFAULT.with_(repetition_penalty=0.5),
            caption(5, out_of_world=True),
            BUILTIN_DEFAULT,
            31,
        )
        assert said == [notes.OUT_OF_WORLD_NOTE]


def test_without_a_reference_the_caption_itself_is_judged():
    assert notes.caption_notes(caption(3, out_of_world=True), BUILTIN_DEFAULT) == [notes.OUT_OF_WORLD_NOTE]
    assert notes.caption_notes(caption(3, out_of_world=None), BUILTIN_DEFAULT) == []


def test_the_limit_note_names_the_setting_that_kept_the_caption_going():
    config = BUILTIN_DEFAULT.with_(no_repeat_ngram_size=1, max_new_tokens=31)
    said = notes.limit_note(caption(31, finished=False), config, 31, caption(8), notes.changed_settings(config, BUILTIN_DEFAULT))
    assert "no-repeat n-gram size 1" in said and "after 8 tokens" in said and "Raise" not in said


def test_the_limit_note_never_asks_beyond_the_sliders_end():
    config = BUILTIN_DEFAULT.with_(max_new_tokens=31)
    said = notes.limit_note(caption(31, finished=False), config, 31, caption(31, finished=False), [])
    assert "Raise" not in said and "the most this model holds" in said
    lower = BUILTIN_DEFAULT.with_(max_new_tokens=4)
    said = notes.limit_note(caption(4, finished=False), lower, 31, caption(8), [])
    assert "Raise *Max new tokens* (up to 31)" in said


@given(st.integers(1, 128), st.integers(1, 128), st.booleans(), st.integers(1, 128))
@hsettings(max_examples=200, deadline=None)
def test_the_limit_advice_is_always_possible(most, end, reference_ends, reference_len):
    end = max(end, most)
    said = notes.limit_note(
        caption(most, finished=False),
        BUILTIN_DEFAULT.with_(max_new_tokens=most),
        end,
        caption(reference_len, finished=reference_ends),
        [],
    )
    assert ("Raise" in said) == (most < end)
    assert f"limit of {most} token{'s' if most != 1 else ''} " in said


def test_one_token_is_singular():
    assert "limit of 1 token instead" in notes.limit_note(
        caption(1, finished=False), BUILTIN_DEFAULT.with_(max_new_tokens=1), 31, None, []
    )
    assert notes.plural(1, "token") == "1 token" and notes.plural(2, "image") == "2 images"


def test_changed_settings_list_only_what_changes_the_caption():
    assert notes.changed_settings(BUILTIN_DEFAULT, BUILTIN_DEFAULT) == []
    assert notes.changed_settings(BUILTIN_DEFAULT.with_(max_new_tokens=5, seed=3), BUILTIN_DEFAULT) == []
    assert notes.changed_settings(BUILTIN_DEFAULT.with_(temperature=2.0), BUILTIN_DEFAULT) == []  # greedy ignores it
    assert notes.changed_settings(
        BUILTIN_DEFAULT.with_(strategy="beam", num_beams=16, no_repeat_ngram_size=1), BUILTIN_DEFAULT.with_(num_beams=4)
    ) == ["beam search", "beams 16", "no-repeat n-gram size 1"]
