"""Tests of the scene world: renderer, captions, parser, metrics, tokenizer."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest

from captioner.metrics import cider_d, corpus_bleu4, exact_match, word_tokens
from captioner.world import (
    COLOURS,
    EVAL_SEED_OFFSET,
    VAL_SEED_OFFSET,
    VOCABULARY,
    Background,
    Scene,
    SceneObject,
    all_true_facts,
    fact_scores,
    make_examples,
    match_mentions_to_objects,
    object_masks,
    parse_caption,
    reference_captions,
    relation,
    render_scene,
    sample_scene,
    scene_facts,
    split_seeds,
)
from captioner.world.render import object_alpha

SEEDS = range(300)


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return [sample_scene(s) for s in SEEDS]


@pytest.fixture(scope="module")
def tokenizer():
    from captioner.world import build_tokenizer

    return build_tokenizer()


def _obj(shape: str, colour: str, size: str, cx: float, cy: float) -> SceneObject:
    return SceneObject(shape, colour, size, cx, cy, 5.5 if size == "small" else 10.0, 0.0)


def _scene(*objects: SceneObject) -> Scene:
    return Scene(tuple(objects), Background("plain", (128, 128, 128), (128, 128, 128)), 64, 0)


# ---------------------------------------------------------------- renderer


def test_sampling_and_rendering_are_deterministic() -> None:
    for seed in (0, 7, 123456):
        a, b = sample_scene(seed), sample_scene(seed)
        assert a == b
        assert np.array_equal(np.asarray(render_scene(a)), np.asarray(render_scene(b)))
    assert sample_scene(random.Random(5)) == sample_scene(random.Random(5))
    assert sample_scene(np.random.default_rng(5)) == sample_scene(np.random.default_rng(5))
    assert sample_scene(1) != sample_scene(2)


def test_scenes_vary_in_objects_shapes_colours_and_backgrounds(scenes: list[Scene]) -> None:
    counts = Counter(len(s.objects) for s in scenes)
    assert set(counts) == {1, 2, 3}
    assert len({o.shape for s in scenes for o in s.objects}) >= 5
    assert len({o.colour for s in scenes for o in s.objects}) >= 7
    assert len({s.background.kind for s in scenes}) >= 4
    image = render_scene(scenes[0])
    assert image.mode == "RGB" and image.size == (64, 64)


def test_objects_are_apart_and_relations_clear(scenes: list[Scene]) -> None:
    for scene in scenes:
        masks = object_masks(scene)
        objs = scene.objects
        for i in range(len(objs)):
            for j in range(i + 1, len(objs)):
                assert not (masks[i] & masks[j]).any()
                assert relation(objs[i], objs[j]) is not None  # every pair clearly apart along one axis
                assert math.dist((objs[i].cx, objs[i].cy), (objs[j].cx, objs[j].cy)) > objs[i].radius + objs[j].radius + 3


def test_masks_nonempty_and_inside_image(scenes: list[Scene]) -> None:
    for scene in scenes[:100]:
        for obj, mask in zip(scene.objects, object_masks(scene)):
            assert mask.shape == (64, 64) and mask.dtype == bool
            assert mask.sum() >= 20 if obj.size == "small" else mask.sum() >= 100
            border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
            assert not border.any()  # not cut by the image edge
    big = [m.sum() for s in scenes for o, m in zip(s.objects, object_masks(s)) if o.size == "big"]
    small = [m.sum() for s in scenes for o, m in zip(s.objects, object_masks(s)) if o.size == "small"]
    assert min(big) > 1.5 * max(small)  # sizes are clearly different


def test_rendered_colours_match_names(scenes: list[Scene]) -> None:
    names = list(COLOURS)
    palette = np.array([COLOURS[c] for c in names], dtype=float)
    for scene in scenes[:150]:
        pixels = np.asarray(render_scene(scene), dtype=float)
        background = np.ones((64, 64), bool)
        for obj in scene.objects:
            alpha = object_alpha(obj, 64)
            background &= alpha == 0
            inside = pixels[alpha > 0.99]
            assert len(inside) >= 4
            mean = inside.mean(axis=0)
            assert np.abs(mean - COLOURS[obj.colour]).max() < 6
            # every fully covered pixel is nearest to its own named colour
            nearest = np.argmin(((inside[:, None, :] - palette[None]) ** 2).sum(-1), axis=1)
            assert all(names[k] == obj.colour for k in nearest)
        # background pixels are far from every object colour
        bg = pixels[background]
        assert np.sqrt(((bg[:, None, :] - palette[None]) ** 2).sum(-1)).min() > 60


# ---------------------------------------------------------------- captions & parser


def test_references_round_trip(scenes: list[Scene]) -> None:
    for scene in scenes:
        facts = scene_facts(scene)
        refs = reference_captions(scene)
        assert len(refs) >= 3 and len(set(refs)) == len(refs)
        assert sum(f[0] == "object" for f in facts) == len(scene.objects)
        for ref in refs:
            assert ref == " ".join(ref.split()) and ref == ref.lower()
            parsed = parse_caption(ref)
            assert parsed.fully_parsed, (ref, parsed.errors)
            assert parsed.facts == facts, ref
            for _, objects in match_mentions_to_objects(parsed, scene):
                assert objects
        assert facts <= all_true_facts(scene)


def test_relation_facts_are_true_of_the_geometry(scenes: list[Scene]) -> None:
    for scene in scenes:
        by_attrs = {o.attributes: o for o in scene.objects}
        for fact in scene_facts(scene):
            if fact[0] == "relation":
                _, a, rel, b = fact
                assert rel in ("left of", "above")
                assert relation(by_attrs[a], by_attrs[b]) == rel


def test_identical_objects_are_counted() -> None:
    scene = _scene(
        _obj("square", "blue", "small", 12, 20), _obj("circle", "red", "big", 40, 20), _obj("square", "blue", "small", 12, 50)
    )
    refs = reference_captions(scene)
    assert refs[0] == "two small blue squares and a big red circle"
    assert refs[2] == "there is a big red circle and two small blue squares"
    assert scene_facts(scene) == {
        ("object", "small", "blue", "square", 1),
        ("object", "small", "blue", "square", 2),
        ("object", "big", "red", "circle", 1),
    }
    parsed = parse_caption(refs[0])
    assert match_mentions_to_objects(parsed, scene) == [(2, (0, 2)), (3, (0, 2)), (7, (1,)), (8, (1,))]
    assert match_mentions_to_objects(parse_caption("a big blue square"), scene) == [(2, ()), (3, ())]
    assert match_mentions_to_objects(parsed, scene, include_size=True)[0] == (1, (0, 2))


def test_reference_styles_and_paraphrases() -> None:
    scene = _scene(
        _obj("circle", "red", "small", 7, 14), _obj("square", "blue", "big", 29, 14), _obj("star", "green", "small", 22, 57)
    )
    assert reference_captions(scene) == [
        "a small red circle left of a big blue square above a small green star",
        "a little red circle to the left of a large blue square above a little green star",
        "there is a small green star below a big blue square right of a small red circle",
    ]
    facts = scene_facts(scene)
    for paraphrase in [
        "a small green star below a large blue square to the right of a little red circle",
        "a little red circle left of a big blue square above a small green star",
    ]:
        assert parse_caption(paraphrase).facts == facts
    # every mention is a new object: naming the square twice claims two squares
    twice = parse_caption("a big blue square right of a small red circle and a small green star below a big blue square")
    assert ("object", "big", "blue", "square", 2) in twice.facts and len(twice.relations) == 2
    # a true relation between non-consecutive objects is accepted as true, though not required
    extra = parse_caption("a small red circle above a small green star").facts
    assert fact_scores(extra, facts, allowed=all_true_facts(scene)) == (1.0, 2 / 5)


def test_parser_flags_bad_text_without_raising() -> None:
    for text in [
        "",
        "hello world",
        "a small red",
        "a small red circle left of",
        "a small banana circle",
        "two small red circle",
        "small red circle",
        "a small red circle ## a big blue square",
    ]:
        parsed = parse_caption(text)
        assert not parsed.fully_parsed, text
        assert parsed.errors
    parsed = parse_caption("a small red circle foo a big blue square")
    assert {m.shape for m in parsed.mentions} == {"circle", "square"} and not parsed.relations
    ok = parse_caption("A  Small red CIRCLE above a big blue square")
    assert ok.fully_parsed and ok.mentions[1].colour_index == 7 and ok.mentions[1].shape_index == 8
    assert ("relation", ("small", "red", "circle"), "above", ("big", "blue", "square")) in ok.facts
    assert parse_caption("three little yellow stars").facts == {("object", "small", "yellow", "star", k) for k in (1, 2, 3)}


# ---------------------------------------------------------------- tokenizer


def test_references_use_only_the_vocabulary_and_the_saved_tokenizer_reads_them_alike(
    scenes: list[Scene], tokenizer, tmp_path
) -> None:
    vocab = set(VOCABULARY)
    assert len(vocab) == len(VOCABULARY)
    assert (
        tokenizer.convert_tokens_to_ids("<|endoftext|>")
        == 0
        == tokenizer.eos_token_id
        == tokenizer.bos_token_id
        == tokenizer.pad_token_id
    )
    unk = tokenizer.unk_token_id
    for scene in scenes:
        for ref in reference_captions(scene):
            assert set(ref.split()) <= vocab
            ids = tokenizer(ref)["input_ids"]
            assert len(ids) == len(ref.split()) and unk not in ids
            assert tokenizer.decode([0, *ids, 0], skip_special_tokens=True) == ref
    assert tokenizer("A small ZEBRA")["input_ids"][2] == unk

    from transformers import AutoTokenizer

    from captioner.world import save_tokenizer

    save_tokenizer(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "two large purple crosses above a little white star"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded.decode(loaded(text)["input_ids"]) == text


# ---------------------------------------------------------------- metrics


def test_fact_precision_and_recall_of_known_sets() -> None:
    assert fact_scores({"a", "b", "x"}, {"a", "b", "c", "d"}) == (2 / 3, 2 / 4)
    assert fact_scores({"a"}, {"a"}) == (1.0, 1.0)
    assert fact_scores(set(), {"a"}) == (0.0, 0.0)
    assert fact_scores(set(), set()) == (1.0, 1.0)


def test_exact_match_and_tokens() -> None:
    assert word_tokens("  A small\tRed  circle ") == ["a", "small", "red", "circle"]
    assert exact_match("A small  red circle", ["a big red circle", "a small red circle"])
    assert not exact_match("a small red", ["a small red circle"])


def test_bleu4_matches_hand_worked_scores_and_the_brevity_penalty() -> None:
    ref = "a small red circle above a big blue square"
    assert corpus_bleu4([ref], [[ref]]) == pytest.approx(1.0)
    # hand-worked: hyp has 10 words, ref 9 (no brevity penalty);
    # matches 8/10 unigrams, 6/9 bigrams, 4/8 trigrams, 2/7 4-grams
    hyp = "a small red circle left of a big blue square"
    assert corpus_bleu4([hyp], [[ref]]) == pytest.approx((8 / 10 * 6 / 9 * 4 / 8 * 2 / 7) ** 0.25)
    assert corpus_bleu4([hyp], [[ref]]) == pytest.approx(0.525382, abs=1e-6)
    # every n-gram matches but hyp is short: brevity penalty exp(1 - 9/4)
    assert corpus_bleu4(["a small red circle"], [[ref]]) == pytest.approx(math.exp(1 - 9 / 4))
    # the closest reference length counts; n-grams are clipped by the max count in any ref
    assert corpus_bleu4(["a small red circle"], [[ref, "a small red circle"]]) == pytest.approx(1.0)
    assert corpus_bleu4(["a a a a"], [["a small red circle"]]) == 0.0
    # corpus level: counts are summed before the geometric mean
    both = corpus_bleu4([hyp, ref], [[ref], [ref]])
    assert both == pytest.approx(((8 + 9) / 19 * (6 + 8) / 17 * (4 + 7) / 15 * (2 + 6) / 13) ** 0.25)


def test_cider_d_matches_hand_computed_scores_and_its_length_penalty() -> None:
    # Hand-computed: 2 images, idf = log(2) - log(df). "a" is in both ref sets: weight 0;
    # other n-grams weight log 2 (unseen n-grams too: df clipped to 1).
    # image 1: hyp == ref -> cosine 1 for n = 1, 2, 3 and 0 for n = 4 (no 4-grams): 10 * 3/4 = 7.5
    # image 2: "a blue circle" vs "a blue square": n=1 cos 1/2 (blue), n=2 cos 1/2 ("a blue"),
    #          n=3, 4: 0; equal lengths -> no penalty: 10 * 1/4 = 2.5; mean = 5.0
    assert cider_d(["a red circle", "a blue circle"], [["a red circle"], ["a blue square"]]) == pytest.approx(5.0)
    # length penalty: 2 extra bigrams -> factor exp(-4 / 72) on image 1's score
    assert cider_d(["a red circle", "a blue circle"], [["a red circle"], ["a blue square"]]) > cider_d(
        ["a red circle red circle", "a blue circle"], [["a red circle"], ["a blue square"]]
    )
    examples = list(make_examples(range(20)))
    refs = [r for _, _, r in examples]
    full = cider_d([r[0] for r in refs], refs)
    partial = cider_d([" ".join(r[0].split()[:4]) for r in refs], refs)
    assert full > partial > 0
    assert cider_d(["a red circle"], [["a red circle"]]) == 0.0  # one image: idf is 0, as in coco-caption


# ---------------------------------------------------------------- dataset


def test_examples_come_from_their_split_and_the_splits_never_overlap() -> None:
    ((image, scene, refs),) = make_examples([split_seeds("eval", 1)[0]])
    assert scene.seed == EVAL_SEED_OFFSET and image.size == (64, 64) and refs == reference_captions(scene)
    assert split_seeds("val", 3, start=2) == range(VAL_SEED_OFFSET + 2, VAL_SEED_OFFSET + 5)
    assert max(split_seeds("train", 1000)) < min(split_seeds("val", 1)) < min(split_seeds("eval", 1))


# ---------------------------------------------------------------- second renderer (the hold-out)
from captioner.world.render import SIZE_RADIUS, TRAINING_VARIETY, reading_order  # noqa: E402
from captioner.world.second import MAX_SIZE, MIN_SIZE, make_second_example  # noqa: E402

SECOND_SEEDS = range(EVAL_SEED_OFFSET, EVAL_SEED_OFFSET + 120)


@pytest.fixture(scope="module")
def second_examples():
    return [make_second_example(seed) for seed in SECOND_SEEDS]


def test_second_renderer_is_deterministic_and_differs_from_the_first() -> None:
    for seed in (EVAL_SEED_OFFSET, 7):
        a, b = make_second_example(seed), make_second_example(seed)
        assert a[1] == b[1] and np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
        assert a[1] != sample_scene(seed)  # its own sampler, not the first renderer's scene


def test_second_renderer_spreads_what_the_first_holds_fixed(second_examples) -> None:
    sizes = {image.size[0] for image, _, _ in second_examples}
    assert min(sizes) >= MIN_SIZE and max(sizes) <= MAX_SIZE and max(sizes) - min(sizes) > 300
    assert all(image.size[0] == image.size[1] for image, _, _ in second_examples)
    spread = [o.radius / (SIZE_RADIUS[o.size] * s.image_size) for _, s, _ in second_examples for o in s.objects]
    assert 0.8 <= min(spread) < 0.85 and 1.15 < max(spread) <= 1.2  # +-20% around the nominal sizes
    angles = [o.angle for _, s, _ in second_examples for o in s.objects if o.shape != "circle"]
    assert max(angles) - min(angles) > 300  # any rotation, not the first renderer's +-15 degrees
    assert len({s.background.kind for _, s, _ in second_examples}) == 5
    assert len({o.shape for _, s, _ in second_examples for o in s.objects}) == 5
    assert len({len(s.objects) for _, s, _ in second_examples}) == 3


def test_second_renderer_scenes_state_true_facts(second_examples) -> None:
    for image, scene, masks in second_examples:
        assert reading_order(scene.objects) is not None  # every relation clear
        refs = reference_captions(scene)
        for ref in refs:
            parsed = parse_caption(ref)
            assert parsed.fully_parsed and parsed.facts == scene_facts(scene), ref
        size = image.size[0]
        for obj, mask in zip(scene.objects, masks):
            assert mask.shape == (size, size) and mask.sum() > 0.5 * obj.radius**2
            border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
            assert not border.any()
        for i in range(len(masks)):
            for j in range(i + 1, len(masks)):
                assert not (masks[i] & masks[j]).any()


def test_second_renderer_draws_the_named_colours(second_examples) -> None:
    names = list(COLOURS)
    palette = np.array([COLOURS[c] for c in names], dtype=float)
    for image, scene, masks in second_examples:
        pixels = np.asarray(image, dtype=float)
        for obj, mask in zip(scene.objects, masks):
            core = pixels[mask].reshape(-1, 3)
            nearest = names[int(np.argmin(((np.median(core, axis=0) - palette) ** 2).sum(-1)))]
            assert nearest == obj.colour, (scene.seed, obj)


def test_training_looks_are_varied_and_keep_captions_true() -> None:
    from captioner.world.augment import training_example

    examples = [training_example(seed) for seed in range(60)]
    assert len({image.size for image, _, _ in examples}) > 10
    assert any(scene.supersample == 1 for _, scene, _ in examples)
    for image, scene, masks in examples:
        assert image.size == (scene.image_size, scene.image_size) and len(masks) == len(scene.objects)
        assert reading_order(scene.objects) is not None
    assert TRAINING_VARIETY.max_angle == 180 and TRAINING_VARIETY.size_jitter >= 0.2


def test_outlier_images_cover_every_kind() -> None:
    from captioner.world.outliers import KINDS, outlier_image

    images = [outlier_image(i) for i in range(2 * len(KINDS))]
    assert all(im.size == (64, 64) and im.mode == "RGB" for im in images)
    assert np.array_equal(np.asarray(outlier_image(3)), np.asarray(images[3]))
    assert len({np.asarray(im).tobytes() for im in images}) == len(images)


@pytest.mark.slow
def test_training_never_loads_the_hold_out_code() -> None:
    """The second renderer and the held-out non-scenes stay out of training's process (a real hold-out)."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from captioner.world import train\n"
        "mc = train.model_config('tiny')\n"
        "data = train.render_dataset(range(8), mc, progress=False, outliers=4)\n"
        "batch = train.make_batch(data, torch.arange(12), torch.Generator().manual_seed(0), train.TrainConfig(), mc)\n"
        "assert batch[0].shape == (12, 3, 64, 64)\n"
        "print(sorted(m for m in sys.modules if m in ('captioner.world.second', 'captioner.world.nonscenes')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
