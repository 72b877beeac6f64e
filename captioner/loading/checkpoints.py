"""State dicts as training code saves them: inside a wrapper, with the prefixes of the wrapped model.

- A wrapper: `{"model": state_dict, "optimizer": ..., "iter_num": ...}` (nanoGPT), `{"state_dict": ...}`
  (Lightning and many scripts), `{"model_state_dict": ...}`. The weights are its one state-dict entry;
  the rest (optimizer, step counts, configs) is left aside.
- Prefixes: `module.` on every name (saved from `DataParallel` / `DistributedDataParallel`),
  `_orig_mod.` (saved from `torch.compile`: on every name, or inside one, when a submodule was compiled),
  `model.` on every name (a LightningModule holding the network as `self.model`),
  in any order and nesting (`module._orig_mod.`, `_orig_mod.module.`).

What was unwrapped or stripped is said in a note; what cannot be read one way only is refused with
the reason (several state dicts in one wrapper, a prefix on some names only, two names that become one).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, NamedTuple

import torch

from captioner.loading.errors import ModelLoadError, name_list

WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
# What each training wrapper adds to every tensor name, and who adds it.
TRAINING_PREFIXES = {"module.": "DataParallel", "_orig_mod.": "torch.compile", "model.": "a LightningModule's self.model"}
COMPILED_PART = "._orig_mod."  # a compiled submodule's weights: "transformer._orig_mod.h.0..."


class Checkpoint(NamedTuple):
    """A checkpoint's weights as the model names them, and what was done to get them."""

    state: dict[str, torch.Tensor]
    notes: list[str]


def is_state_dict(obj: Any) -> bool:
    """A non-empty mapping of names to tensors."""
    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def unwrap_training_save(obj: Any, source: str, *, strip_prefixes: bool = True) -> Checkpoint:
    """The state dict inside what `torch.load` returned, its training prefixes stripped (see the module's doc)."""
    notes: list[str] = []
    if not is_state_dict(obj) and isinstance(obj, dict):
        inside = [k for k in WRAPPER_KEYS if is_state_dict(obj.get(k))]
        if len(inside) > 1:
            raise ModelLoadError(
                f"{source} holds several state dicts ({', '.join(inside)}): it is not clear which are the model's weights. "
                "Save the one you mean on its own."
            )
        if inside:
            aside = [str(k) for k in obj if k != inside[0]]
            notes.append(
                f'the weights are the checkpoint\'s "{inside[0]}" entry' + (f" (left aside: {name_list(aside)})" if aside else "")
            )
            obj = obj[inside[0]]
    if not is_state_dict(obj):
        raise ModelLoadError(f"{source} holds no state dict (a mapping of names to tensors).")
    state = dict(obj)
    if strip_prefixes:
        state, stripped = strip_training_prefixes(state, source)
        notes += stripped
    return Checkpoint(state, [f"{source}: {'; '.join(notes)}"] if notes else [])


def strip_training_prefixes(state: Mapping[str, torch.Tensor], source: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """`state` with the prefixes every name shares (DataParallel's, torch.compile's) and compiled
    submodules' `_orig_mod.` removed, and a note for each kind removed."""
    names = list(state)
    stripped: list[str] = []
    while prefix := next((p for p in TRAINING_PREFIXES if all(n.startswith(p) for n in names)), None):
        names = [n[len(prefix) :] for n in names]
        stripped.append(prefix)
    inner = sum(COMPILED_PART in n for n in names)
    names = [n.replace(COMPILED_PART, ".") for n in names]
    partial = [(p, sum(n.startswith(p) for n in names)) for p in TRAINING_PREFIXES]
    for prefix, count in partial:
        if count:
            with_it = [n for n in names if n.startswith(prefix)][:2]
            without = [n for n in names if not n.startswith(prefix)][:2]
            raise ModelLoadError(
                f"{source}: {count} of {len(names)} tensor names begin with {prefix!r} (as {TRAINING_PREFIXES[prefix]} "
                f"saves them) and the others do not (e.g. {', '.join(with_it)} beside {', '.join(without)}): it is not "
                "clear which are the model's weights."
            )
    if len(set(names)) < len(names):
        twice = sorted(n for n, k in Counter(names).items() if k > 1)
        raise ModelLoadError(f"{source}: with the training prefixes removed, {name_list(twice)} would be named twice.")
    notes = [f"the prefix {p!r} ({TRAINING_PREFIXES[p]}) was stripped from every tensor name" for p in stripped]
    if inner:
        notes.append(f"'_orig_mod.' (a submodule saved from torch.compile) was stripped from {inner} tensor names")
    return dict(zip(names, state.values())), notes
