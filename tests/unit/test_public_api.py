"""`import captioner` gives the public API, lazily: the names work, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import captioner


def test_import_captioner_loads_no_torch_and_no_submodules():
    code = "import sys, captioner; print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('captioner.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_public_names_are_the_runtime_s_own_objects():
    from captioner.archives import ArchiveError
    from captioner.config import ConfigError, DecodingConfig
    from captioner.decoding import caption_image, caption_images, decode, encode_image
    from captioner.images import ImageLoadError, load_image
    from captioner.loading import ModelLoadError, load_captioner

    expected = dict(
        load_captioner=load_captioner,
        load_image=load_image,
        DecodingConfig=DecodingConfig,
        caption_image=caption_image,
        caption_images=caption_images,
        encode_image=encode_image,
        decode=decode,
        ModelLoadError=ModelLoadError,
        ImageLoadError=ImageLoadError,
        ConfigError=ConfigError,
        ArchiveError=ArchiveError,
    )
    assert sorted(captioner.__all__) == sorted(expected)
    for name, obj in expected.items():
        assert getattr(captioner, name) is obj, name
    assert set(expected) <= set(dir(captioner))


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'caption_everything'"):
        captioner.caption_everything  # noqa: B018


def test_the_readme_example_runs_on_the_builtin_model(tmp_path):
    """The README's Python example, as written there, on the built-in model and one of its example images."""
    from captioner.loading import BUILTIN_DIR

    examples = sorted((BUILTIN_DIR / "examples").glob("*.png"))
    if not examples:
        pytest.skip("the built-in model's examples are not shipped")
    readme = (BUILTIN_DIR.parent.parent / "README.md").read_text()
    block = readme.split("## Python\n", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    code = block.replace('"photo.jpg"', repr(str(examples[0])))
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # the README's own code, run as a user would
    assert namespace["caption"].text and len(namespace["caption"].tokens) == len(namespace["caption"].token_probs)
