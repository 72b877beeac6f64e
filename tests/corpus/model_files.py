"""Builders of model files and folders for the model cases: the tiny seed, a Hugging Face folder, edits."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


CODE_THAT_MUST_NOT_RUN = "import pathlib\npathlib.Path(__file__).with_name('RAN').write_text('ran')\n"


@functools.lru_cache(maxsize=None)
def template(kind: str) -> Path:
    """A model folder built once per process and copied for each case: "hf", or a tokenizer layout."""
    from tests.tiny_models import make_gpt2_visiongpt2_dir, make_tiny_hf_dir

    folder = Path(tempfile.mkdtemp(prefix=f"corpus-{kind}-"))
    atexit.register(shutil.rmtree, folder, True)
    make_tiny_hf_dir(folder) if kind == "hf" else make_gpt2_visiongpt2_dir(folder, kind)
    return folder


def copy_of(kind: str, folder: Path) -> Path:
    shutil.copytree(template(kind), folder, dirs_exist_ok=True)
    return folder


def seed(folder: Path, mutate: Callable[[dict], None] | None = None, layout: str = "save_pretrained_v4") -> Path:
    """A tiny VisionGPT2 captioner.pt with GPT-2's tokenizer beside it; `mutate` edits its state dict first."""
    import torch

    path = copy_of(layout, folder) / "captioner.pt"
    if mutate is not None:
        state = torch.load(path, weights_only=True)
        mutate(state)
        torch.save(state, path)
    return path


def seed_with(
    name: str, content: str | None = None, special: Callable[[Path], None] | None = None, layout: str = "save_pretrained_v4"
) -> Callable[[Path], Path]:
    """A builder: the tiny seed folder, with file `name` replaced by `content` (text) or made by `special`."""

    def build(folder: Path) -> Path:
        path = seed(folder, layout=layout)
        target = folder / name
        if os.path.lexists(target):
            target.unlink()
        special(target) if special is not None else target.write_text(content)
        return path

    return build


def seed_edited(mutate: Callable[[dict], None]) -> Callable[[Path], Path]:
    return lambda folder: seed(folder, mutate)


def set_key(key: str, make) -> Callable[[dict], None]:
    def mutate(state: dict) -> None:
        state[key] = make(state.get(key))

    return mutate


def json_text(obj) -> str:
    import json

    return json.dumps(obj)


def add_auto_map(folder: Path, file: str, module: str, cls: str, auto: str) -> None:
    """Add `auto_map` naming `module`.py (which would write RAN) to the JSON file `file`."""
    import json

    config = json.loads((folder / file).read_text()) if (folder / file).exists() else {}
    config["auto_map"] = {auto: [f"{module}.{cls}", None] if auto == "AutoTokenizer" else f"{module}.{cls}"}
    (folder / file).write_text(json.dumps(config))
    (folder / f"{module}.py").write_text(CODE_THAT_MUST_NOT_RUN)


def hf_folder(edit: Callable[[Path], None]) -> Callable[[Path], Path]:
    """A builder: a tiny Hugging Face ViT-GPT2 folder, then `edit(folder)`."""

    def build(folder: Path) -> Path:
        edit(copy_of("hf", folder))
        return folder

    return build


def edit_json(file: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        import json

        config = json.loads((folder / file).read_text())
        change(config)
        (folder / file).write_text(json.dumps(config))

    return edit


def edit_weights(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        from safetensors.torch import load_file, save_file

        state = load_file(str(folder / "model.safetensors"))
        change(state)
        save_file(state, str(folder / "model.safetensors"))

    return edit


def sparse_file(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with open(path, "wb") as f:
            f.truncate(size)  # a hole: no disk used

    return make


def nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def zeros(shape, dtype=None):
    import torch

    return torch.zeros(shape, dtype=dtype or torch.float32)


def poison(value: float) -> Callable:
    def make(t):
        t = t.clone()
        t.view(-1)[t.numel() // 2] = value
        return t

    return make


def cast_to(dtype_name: str) -> Callable:
    import torch

    dtype = getattr(torch, dtype_name)
    return lambda t: t.to(dtype) if dtype_name != "sparse" else t.to_sparse()


def set_decoder(key: str, value) -> Callable[[dict], None]:
    return lambda c: c["decoder"].__setitem__(key, value)


def set_encoder(key: str, value) -> Callable[[dict], None]:
    return lambda c: c["encoder"].__setitem__(key, value)


def put(key: str, value) -> Callable[[dict], None]:
    return lambda c: c.__setitem__(key, value)


def remove_file(file: str) -> Callable[[Path], None]:
    return lambda folder: (folder / file).unlink()


def index_escaping(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors.index.json").write_text(json_text({"weight_map": {"a": "../../etc/passwd"}}))


def word_tokenizer_without_end(folder: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    path = seed(folder)
    for name in ("tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"):
        (folder / name).unlink()
    tok = Tokenizer(models.WordLevel({"<unk>": 0, "a": 1}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok).backend_tokenizer.save(str(folder / "tokenizer.json"))
    return path
