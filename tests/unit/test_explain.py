"""captioner.explain: per-word maps of every method on both families, their checks, hiding regions, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from captioner.config import DecodingConfig
from captioner.decoding import caption_image
from captioner.explain import METHODS, explain, hide_regions, mask_cells, parse_grid
from captioner.explain.forward import attention_pass
from captioner.explain.gradient import gradient_times_attention
from captioner.explain.hide import changed_words
from captioner.explain.masking import cell_box
from captioner.explain.result import normalised, word_groups
from captioner.loading import load_captioner
from captioner.models.base import ModelInfo
from captioner.models.visiongpt2 import VisionGPT2Captioner
from tests.tiny_models import make_tiny_visiongpt2, make_word_tokenizer

CAPTION_IDS = [5, 9, 12, 9, 30, 0]  # "w3 w7 w10 w7 w28" and the end token


def picture(size: int = 32, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


@pytest.fixture(scope="module", params=["visiongpt2", "hf"])
def tiny(request, tiny_visiongpt2_dir, tiny_hf_dir):
    return load_captioner(str(tiny_visiongpt2_dir if request.param == "visiongpt2" else tiny_hf_dir))


@pytest.mark.parametrize("method", METHODS)
def test_each_method_gives_one_normalised_map_per_word(tiny, method):
    e = explain(tiny, picture(), CAPTION_IDS, method)
    groups = word_groups([tiny.token_text(i) for i in CAPTION_IDS], finished=True)
    assert [w.word for w in e.words] == [g[0] for g in groups] and len(e.words) == 5
    for w in e.words:
        assert w.map.shape == tiny.grid and np.isfinite(w.map).all() and (w.map >= 0).all()
        assert w.map.sum() == pytest.approx(1.0, abs=1e-5)
        assert np.isfinite(w.logprob) and w.logprob <= 0
    assert e.method == method and e.grid == tiny.grid and e.seconds > 0 and e.forward_passes >= 1
    assert e.backward_passes == (1 if method in ("relevance", "gradcam") else 0)
    if method == "occlusion":
        assert e.forward_passes == 2 + tiny.grid[0] * tiny.grid[1]  # the image, the blank image, each cell blanked
        assert all(isinstance(w.supported, bool) for w in e.words)
    json.dumps(e.to_dict(), allow_nan=False)


def test_teacher_forced_attention_is_what_decoding_reports(tiny):
    config = DecodingConfig(strategy="greedy", max_new_tokens=8, output_attentions=True)
    caption = caption_image(tiny, picture(seed=1), [config])[0].best
    for layer, head in [("mean", "mean"), (tiny.num_layers - 1, 0), (0, tiny.num_heads - 1)]:
        e = explain(tiny, picture(seed=1), caption, "attention", layer=layer, head=head)
        reported = caption.attentions.mean(axis=1) if layer == "mean" else caption.attentions[:, layer]  # (T, H, rows, cols)
        reported = reported.mean(axis=1) if head == "mean" else reported[:, head]
        assert [w.token_indices for w in e.words] == [idx for _, idx in word_groups(caption.tokens, caption.finished)]
        for w in e.words:
            np.testing.assert_allclose(w.map, normalised(reported[w.token_indices].sum(axis=0)), atol=1e-5)
    logp = attention_pass(tiny, tiny.preprocess([picture(seed=1)]), caption.token_ids).logprobs.numpy()
    np.testing.assert_allclose(np.exp(logp), caption.token_probs, atol=1e-5)


def test_gradient_agrees_with_finite_differences():
    """dlogp/dA * A is the derivative of logp when one attention weight is scaled by (1 + eps)."""
    model = make_tiny_visiongpt2(seed=2).double()
    cap = VisionGPT2Captioner(model, make_word_tokenizer(), ModelInfo("tiny", "visiongpt2", "test", 0, "float64"))
    pixels = cap.preprocess([picture(seed=2)])
    token = 3
    run = attention_pass(cap, pixels, CAPTION_IDS, grad=True)
    analytic = [ga[token] for ga in gradient_times_attention(run, [0, 1])]

    def logp_scaled(layer, head, query, key, eps):
        def scale(_module, _inputs, out):
            out = out.clone()
            out[0, head, query, key] *= 1 + eps
            return out

        hook = model.transformer.h[layer].cross_attn.attn_dropout.register_forward_hook(scale)
        try:
            return float(attention_pass(cap, pixels, CAPTION_IDS).logprobs[token])
        finally:
            hook.remove()

    checked = 0
    for layer, head, query, key in [(0, 1, 3, 5), (1, 2, 3, 0), (1, 0, 2, 16), (0, 3, 1, 9), (1, 3, 3, 12)]:
        eps = 1e-5
        numeric = (logp_scaled(layer, head, query, key, eps) - logp_scaled(layer, head, query, key, -eps)) / (2 * eps)
        assert float(analytic[layer][head, query, key]) == pytest.approx(numeric, rel=1e-4, abs=1e-9)
        checked += abs(numeric) > 1e-6
    assert checked >= 3  # the checks were not all of zeros
    assert float(analytic[0][:, token + 1 :].abs().max()) == 0  # later positions cannot change an earlier token


def test_occluding_a_region_that_holds_nothing_leaves_the_words_unchanged():
    """A shape on a flat background: blurring a cell of background leaves its pixels, so no word's probability moves,
    while blanking the shape does move them."""
    from PIL import ImageDraw

    model = load_captioner("builtin")
    image = Image.new("RGB", (64, 64), (200, 200, 190))
    ImageDraw.Draw(image).rectangle([36, 8, 55, 27], fill=(220, 30, 30))
    e = explain(model, image, None, "occlusion", fill="blur")
    view = np.asarray(image, dtype=np.int16)
    blurred = np.asarray(mask_cells(image, [(r, c) for r in range(8) for c in range(8)], (8, 8), "blur"), dtype=np.int16)
    same = (blurred == view).all(axis=-1).reshape(8, 8, 8, 8).all(axis=(1, 3))  # per 8x8-pixel cell
    assert 20 <= same.sum() < 64
    drops = np.stack([w.drops for w in e.words])  # (words, 8, 8)
    assert np.abs(drops[:, same]).max() < 1e-5
    assert np.abs(drops[:, ~same]).max() > 1e-3  # cells whose pixels change do move the words


def test_a_word_no_region_supports_is_flagged(tiny):
    """On a flat image blanking a cell with the mean colour changes nothing: no word is supported by any region."""
    e = explain(tiny, Image.new("RGB", (32, 32), (90, 140, 200)), CAPTION_IDS, "occlusion", fill="mean")
    assert e.unsupported == [w.word for w in e.words] and all(w.supported is False for w in e.words)
    assert all(np.abs(w.drops).max() < 1e-5 for w in e.words)
    assert any(w.supported for w in explain(tiny, picture(), CAPTION_IDS, "occlusion", fill="noise").words)


def test_hiding_nothing_changes_nothing(tiny):
    hidden = hide_regions(tiny, picture(), [], fill="noise")
    assert hidden.hidden.token_ids == hidden.original.token_ids and not hidden.changed
    assert not any(hidden.original_changed) and not any(hidden.hidden_changed)
    assert np.array_equal(np.asarray(hidden.image), np.asarray(picture()))


def test_hiding_cells_marks_the_changed_words(tiny):
    config = DecodingConfig(strategy="greedy", max_new_tokens=6)
    cells = [(r, c) for r in range(4) for c in range(4)]
    hidden = hide_regions(tiny, picture(), cells, fill="mean", config=config)
    assert np.asarray(hidden.image).std(axis=(0, 1)).max() == 0  # every cell blanked: one colour
    old, new = hidden.original.text.split(), hidden.hidden.text.split()
    assert (hidden.original_changed, hidden.hidden_changed) == changed_words(old, new)
    assert hidden.changed == any(hidden.hidden_changed + hidden.original_changed)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(st.sampled_from("a b c d".split()), max_size=8), st.lists(st.sampled_from("a b c e".split()), max_size=8))
def test_changed_words_keep_a_common_subsequence(old, new):
    old_changed, new_changed = changed_words(old, new)
    kept_old = [w for w, c in zip(old, old_changed) if not c]
    assert kept_old == [w for w, c in zip(new, new_changed) if not c]
    assert (not any(old_changed) and not any(new_changed)) == (old == new)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.data(), st.sampled_from(["mean", "blur", "noise"]))
def test_masking_touches_only_the_chosen_cells(rows, cols, data, fill):
    image = picture(37, seed=rows * 10 + cols)
    cell = (data.draw(st.integers(0, rows - 1)), data.draw(st.integers(0, cols - 1)))
    out = np.asarray(mask_cells(image, [cell], (rows, cols), fill), dtype=np.int16)
    before = np.asarray(image, dtype=np.int16)
    left, top, right, bottom = cell_box(cell, (rows, cols), image.size)
    inside = np.zeros(before.shape[:2], dtype=bool)
    inside[top:bottom, left:right] = True
    assert np.array_equal(out[~inside], before[~inside])
    if fill == "mean" and inside.any():
        assert (out[inside] == np.round(before.reshape(-1, 3).mean(axis=0))).all()


@pytest.mark.parametrize("text", ["0x3", "7x", "x", "65x2", "3x3x3", "seven"])
def test_bad_grids_are_refused_by_name(text):
    with pytest.raises(ValueError, match="grid must read like 7x7"):
        parse_grid(text)


def test_a_grid_is_read_as_rows_x_columns_or_one_side():
    assert parse_grid("7x7") == (7, 7) and parse_grid("4") == (4, 4) and parse_grid("2×5") == (2, 5)


def test_unknown_method_and_bad_layer_are_refused(tiny):
    with pytest.raises(ValueError, match="Unknown explanation method"):
        explain(tiny, picture(), CAPTION_IDS, "saliency")
    with pytest.raises(ValueError, match="layer must be"):
        explain(tiny, picture(), CAPTION_IDS, "attention", layer=7)


@pytest.mark.parametrize("method", METHODS)
def test_the_cli_writes_each_explanation_method_into_its_json_line(tmp_path, capsys, tiny_visiongpt2_dir, method):
    from captioner.__main__ import main

    path = tmp_path / "photo.png"
    picture().save(path)
    assert main([str(path), "--model", str(tiny_visiongpt2_dir), "--explain", method, "--json", "--max-new-tokens", "5"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    e = record["explanation"]
    assert e["method"] == method and e["grid"] == [4, 4] and e["caption"] == record["caption"]
    assert len(e["words"]) == len(word_groups(record["tokens"], record["finished"])) >= 1
    for w in e["words"]:
        m = np.asarray(w["map"])
        assert m.shape == (4, 4) and np.isfinite(m).all() and m.sum() == pytest.approx(1.0, abs=1e-4)
    assert ("drops" in e["words"][0]) == (method == "occlusion")


def test_cli_refuses_an_unknown_method(tmp_path, capsys):
    from captioner.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "x.png"), "--explain", "saliency"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_cli_method_list_is_the_runtime_list():
    from captioner.__main__ import EXPLAIN_METHODS

    assert EXPLAIN_METHODS == METHODS


def test_explain_keeps_the_model_unchanged(tiny):
    before = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    attn = getattr(tiny.model.config, "_attn_implementation", None)
    explain(tiny, picture(), CAPTION_IDS, "relevance")
    assert all(torch.equal(before[k], v) for k, v in tiny.model.state_dict().items())
    assert getattr(tiny.model.config, "_attn_implementation", None) == attn
    assert all(p.grad is None for p in tiny.model.parameters())


def test_occlusion_reports_progress_and_takes_a_coarser_grid(tiny):
    seen = []
    e = explain(tiny, picture(), CAPTION_IDS, "occlusion", grid=(2, 2), batch_size=3, progress=seen.append)
    assert seen == [0.75, 1.0] and e.forward_passes == 6 and e.settings["grid"] == [2, 2]
    for w in e.words:  # each patch takes the value of the occlusion cell holding it
        assert w.map.shape == tiny.grid and w.drops.shape == (2, 2)
        assert len(np.unique(w.map[:2, :2])) == 1 and len(np.unique(w.map[2:, 2:])) == 1


@pytest.mark.parametrize("method", METHODS)
def test_a_family_without_explanations_is_one_line_before_any_caption(tmp_path, capsys, method):
    """BLIP (and GIT) have no teacher-forced passes here: the CLI says so in one line and exits 2; the API raises ValueError."""
    from captioner.__main__ import main
    from tests.tiny_models import make_tiny_blip_dir

    folder = make_tiny_blip_dir(tmp_path / "blip")
    path = tmp_path / "photo.png"
    picture().save(path)
    assert main([str(path), "--model", str(folder), "--explain", method, "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "Traceback" not in out.err and "AttributeError" not in out.err
    assert out.err.strip().splitlines()[-1].startswith("error: --explain: Explanations are available for VisionGPT2")
    with pytest.raises(ValueError, match="blip model, which has none yet"):
        explain(load_captioner(str(folder)), picture(), "a", method=method)


def test_occlusion_tells_words_several_regions_carry_from_words_the_image_does_not():
    """On the built-in model a colour word of a large object survives any one cell blanked, but not the
    whole image (spread); a function word survives both (not from the image)."""
    from captioner.images import load_image
    from captioner.loading import BUILTIN_DIR

    examples = sorted((BUILTIN_DIR / "examples").glob("*.png"))
    if not examples:
        pytest.skip("the built-in model's examples are not shipped")
    model = load_captioner("builtin")
    e = explain(model, load_image(str(examples[0])), None, "occlusion")
    by_word = {w.word: w for w in e.words}
    assert e.forward_passes == 2 + 64 and set(e.spread) <= set(e.unsupported)
    for w in e.words:
        assert w.spread == (w.supported is False and w.whole_image_drop > 0.01)
    colour = next(w for w in e.words if w.word in ("red", "orange", "yellow", "green", "blue", "purple", "white", "black"))
    assert colour.whole_image_drop > 0.5  # hiding everything takes the colour away
    if "of" in by_word:
        assert abs(by_word["of"].whole_image_drop) < 0.01 and not by_word["of"].spread
    assert json.loads(json.dumps(e.to_dict()))["spread"] == e.spread
