"""What makes two runs "the same model": the weights and the tokenizer, not the path they were loaded from.

A run's key (`BatchRun.run_key`) is a hash of this fingerprint and the decoding settings, so the same
`captioner.pt` named by a relative and an absolute path is one run, and a retrained model saved over
the old file is another. The weights are hashed as loaded (every tensor of every torch module the
model holds: its name, dtype, shape and bytes), once per loaded model, with no cache that could go
stale: 1.07 GB of fp32 weights took 2.6 to 5.7 s on the 2-core development VM under load 20.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from typing import Any

import torch

_FINGERPRINTS: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()  # a loaded model's weights don't change


def model_fingerprint(model: Any) -> str:
    """A hex digest (sha256) of the model's tensors and its tokenizer's vocabulary (computed once per loaded model)."""
    try:
        return _FINGERPRINTS[model]
    except (KeyError, TypeError):
        pass
    fingerprint = _fingerprint(model)
    try:
        _FINGERPRINTS[model] = fingerprint
    except TypeError:  # not weak-referenceable: computed again next time
        pass
    return fingerprint


def _fingerprint(model: Any) -> str:
    digest = hashlib.sha256()  # the fastest of hashlib's here (SHA extensions)
    for attribute, module in sorted(vars(model).items()):
        if isinstance(module, torch.nn.Module):
            for name, tensor in module.state_dict().items():
                digest.update(f"{attribute}.{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
                digest.update(_tensor_bytes(tensor))
    digest.update(_vocabulary(getattr(model, "tokenizer", None)).encode())
    return digest.hexdigest()


def _tensor_bytes(tensor: torch.Tensor) -> bytes | memoryview:
    t = tensor.detach().cpu().contiguous()
    try:
        return memoryview(t.view(torch.uint8).numpy()) if t.numel() else b""  # no copy
    except (RuntimeError, TypeError):  # quantized or sparse tensors: their values as text
        return repr(t.tolist()).encode()


def _vocabulary(tokenizer: Any) -> str:
    get_vocab = getattr(tokenizer, "get_vocab", None)
    if get_vocab is None:
        return ""
    try:
        return json.dumps(sorted(get_vocab().items()), ensure_ascii=False)
    except Exception:  # a tokenizer without a listable vocabulary: its size at least
        return str(len(tokenizer)) if hasattr(tokenizer, "__len__") else ""
