"""load_captioner for BLIP and GIT folders: from a folder in both layouts save_pretrained writes, through a
hub cache, in bfloat16; and every refusal (remote code, misshapen weights, ...) as one message naming what."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from captioner.decoding import caption_image
from captioner.loading import ModelLoadError, load_captioner
from tests.tiny_models import make_hf_cache, make_tiny_blip_dir, make_tiny_git_dir

IMAGE = Image.new("RGB", (40, 40), (90, 120, 200))
MAKERS = {"blip": make_tiny_blip_dir, "git": make_tiny_git_dir}
ARCHITECTURE = {"blip": "BlipForConditionalGeneration", "git": "GitForCausalLM"}


@pytest.fixture
def copy_of(blip_git_dirs, tmp_path):
    def copy(family):
        return shutil.copytree(blip_git_dirs[family], tmp_path / family)

    return copy


def edit_json(path, **changes):
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize("layout", ["hub", "processor"])
@pytest.mark.parametrize("family", ["blip", "git"])
def test_folder_loads_in_each_layout(family, layout, tmp_path):
    folder = MAKERS[family](tmp_path, layout=layout)
    model = load_captioner(str(folder))
    assert model.info.family == family and model.info.source == str(folder)
    assert model.grid == (4, 4) and model.image_size == (32, 32)
    caption = caption_image(model, IMAGE)[0].best
    assert caption.token_ids and caption.attentions.shape[1:] == (2, 4, 4, 4)


@pytest.mark.parametrize("family", ["blip", "git"])
def test_hub_id_from_the_local_cache(family, blip_git_dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo_id = {"blip": "Salesforce/blip-image-captioning-base", "git": "microsoft/git-base-coco"}[family]
    make_hf_cache(tmp_path / "hf-home", repo_id, blip_git_dirs[family])
    model = load_captioner(repo_id)
    assert model.info.name == repo_id and model.info.family == family
    assert (
        caption_image(model, IMAGE)[0].best.token_ids
        == caption_image(load_captioner(str(blip_git_dirs[family])), IMAGE)[0].best.token_ids
    )


@pytest.mark.parametrize("family", ["blip", "git"])
def test_bfloat16_is_the_file_converted(family, blip_git_dirs):
    fp32 = load_captioner(str(blip_git_dirs[family])).model.state_dict()
    bf16 = load_captioner(str(blip_git_dirs[family]), dtype="bfloat16")
    assert bf16.info.dtype == "bfloat16"
    for name, tensor in bf16.model.state_dict().items():
        expected = fp32[name].to(torch.bfloat16) if fp32[name].is_floating_point() else fp32[name]
        assert torch.equal(tensor, expected), name
    assert caption_image(bf16, IMAGE)[0].best.token_ids


def test_every_from_pretrained_is_told_not_to_run_remote_code(blip_git_dirs, monkeypatch):
    import transformers

    calls = []
    for cls in (
        transformers.BlipForConditionalGeneration,
        transformers.GitForCausalLM,
        transformers.AutoImageProcessor,
        transformers.AutoTokenizer,
    ):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            calls.append((klass.__name__, kwargs.get("trust_remote_code", "not passed")))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    load_captioner(str(blip_git_dirs["blip"]))
    load_captioner(str(blip_git_dirs["git"]))
    names = {name for name, _ in calls}
    assert {"BlipForConditionalGeneration", "GitForCausalLM", "AutoImageProcessor", "AutoTokenizer"} <= names
    assert all(value is False for _, value in calls), calls


@pytest.mark.parametrize("family", ["blip", "git"])
def test_auto_map_is_refused_before_transformers_sees_it(family, copy_of, monkeypatch):
    import transformers

    folder = copy_of(family)
    marker = folder / "ran.txt"
    (folder / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    edit_json(folder / "config.json", auto_map={"AutoModel": "modeling_evil.EvilModel"})
    model_class = getattr(transformers, ARCHITECTURE[family])
    monkeypatch.setattr(model_class, "from_pretrained", classmethod(lambda *a, **k: pytest.fail("transformers was called")))
    with pytest.raises(ModelLoadError) as e:
        load_captioner(str(folder))
    assert "auto_map" in str(e.value) and "modeling_evil.py" in str(e.value) and not marker.exists()


MISSHAPEN = {
    "blip": "text_decoder.bert.encoder.layer.0.intermediate.dense.weight",
    "git": "git.visual_projection.visual_projection.0.weight",
}


@pytest.mark.parametrize("family", ["blip", "git"])
def test_misshapen_weights_are_refused_by_name(family, copy_of):
    folder = copy_of(family)
    state = load_file(str(folder / "model.safetensors"))
    key = MISSHAPEN[family]
    state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match=f"{key} of shape .* but the weights hold"):
        load_captioner(str(folder))


@pytest.mark.parametrize("family", ["blip", "git"])
def test_layer_count_and_sizes_must_agree_with_the_weights(family, copy_of):
    folder = copy_of(family)
    config = json.loads((folder / "config.json").read_text())
    text = config["text_config"] if family == "blip" else config
    text["num_hidden_layers"] = 3
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="num_hidden_layers of the text model is 3, but the weights hold 2 text layers"):
        load_captioner(str(folder))
    text["num_hidden_layers"], text["hidden_size"] = 2, "wide"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="hidden_size must be a whole number"):
        load_captioner(str(folder))


@pytest.mark.parametrize("family", ["blip", "git"])
def test_other_refusals_are_one_line(family, copy_of):
    folder = copy_of(family)
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer_config.json").unlink()
    with pytest.raises(ModelLoadError, match="has no tokenizer"):
        load_captioner(str(folder))
    folder = MAKERS[family](folder.parent / "again")
    key = "size" if family == "blip" else "crop_size"
    edit_json(folder / "preprocessor_config.json", **{key: {"height": 64, "width": 64}})
    with pytest.raises(ModelLoadError, match=f"{key}.height is 64, but the encoder takes 32 x 32 images"):
        load_captioner(str(folder))
    edit_json(folder / "config.json", architectures=["BlipForQuestionAnswering"])
    with pytest.raises(ModelLoadError, match=f"only {ARCHITECTURE[family]} captions images"):
        load_captioner(str(folder))


def test_every_from_pretrained_in_the_package_passes_trust_remote_code_false_on_the_calls_line():
    import ast
    from pathlib import Path

    import captioner

    calls = 0
    for path in Path(captioner.__file__).parent.rglob("*.py"):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained":
                calls += 1
                keyword = next((k for k in node.keywords if k.arg == "trust_remote_code"), None)
                assert keyword is not None and isinstance(keyword.value, ast.Constant) and keyword.value.value is False, (
                    f"{path}:{node.lineno}"
                )
                assert keyword.lineno == node.func.end_lineno, f"{path}:{keyword.lineno}"  # on the call's line: a grep reads it
    assert calls >= 3  # every family's model (loading.hf.read_transformers_folder), its image processor, the tokenizer
