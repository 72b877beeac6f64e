"""Converting a model's dtype one tensor at a time, checking its weights are finite, releasing file pages.

A checkpoint opened with mmap is converted without ever holding the whole file and the converted copy
at once: each tensor's file pages are handed back as soon as its converted copy exists.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from captioner.loading.errors import ModelLoadError
from captioner.models.base import dtype_name

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """A torch dtype from its name (float32/fp32, bfloat16/bf16), or a ModelLoadError."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ModelLoadError(f"Unknown dtype {dtype!r}: use float32 or bfloat16.")
    return DTYPES[dtype]


def convert_dtype(
    model: torch.nn.Module, dtype: torch.dtype, release_source: bool = False, check_finite: str | None = None
) -> torch.nn.Module:
    """`model.to(dtype)` for floating-point tensors, one tensor at a time; tied tensors stay tied.

    With `release_source`, after each conversion the pages of the old tensor that belong to a file
    mapping (a checkpoint opened with mmap) are dropped from this process (`release_file_pages`).
    Peak memory is then the converted model plus one tensor, rather than the converted model plus
    the whole file.

    With `check_finite` (the weights' source, for the message), every parameter must be floating point
    and every floating tensor finite once converted: the weights are checked in the same pass, so a
    mapped file's pages are read once. A NaN or infinite value raises ModelLoadError naming the tensor.
    """
    release = release_file_pages() if release_source else None
    names = {id(t): n for n, t in [*model.named_parameters(), *model.named_buffers()]}
    done: dict[int, torch.Tensor] = {}
    for module in model.modules():
        for table in (module._parameters, module._buffers):
            for name, old in list(table.items()):
                if old is None:
                    continue
                if id(old) not in done:
                    done[id(old)] = _converted(old, dtype, release)
                    if check_finite is not None:
                        _check_weight(done[id(old)], names.get(id(old), name), table is module._parameters, check_finite)
                table[name] = done[id(old)]
    return model


def _converted(old: torch.Tensor, dtype: torch.dtype, release: Callable[[torch.Tensor], None] | None) -> torch.Tensor:
    if not old.is_floating_point() or old.dtype == dtype:
        return old
    data = old.detach().to(dtype)
    new = torch.nn.Parameter(data, requires_grad=old.requires_grad) if isinstance(old, torch.nn.Parameter) else data
    if release is not None:
        release(old)
    return new


def _check_weight(t: torch.Tensor, name: str, is_parameter: bool, source: str) -> None:
    if is_parameter and (not t.is_floating_point() or t.layout != torch.strided):
        raise ModelLoadError(f"Refused {source}: {name} holds {dtype_name(t.dtype)} values; weights must be floating point.")
    if t.is_floating_point() and not _all_finite(t):
        raise ModelLoadError(f"Refused {source}: its weights hold NaN or infinite values, first in {name}.")


def _all_finite(t: torch.Tensor) -> bool:
    """Whether every value is finite: then so is the largest magnitude, as NaN and infinities carry
    through the max (one reduction, no bool copy of a whole embedding)."""
    return t.numel() == 0 or math.isfinite(float(torch.linalg.vector_norm(t.detach(), float("inf"))))


def release_file_pages() -> Callable[[torch.Tensor], None]:
    """A function that drops this process's copy of the pages wholly inside a tensor, when they belong to a
    file mapping (madvise MADV_DONTNEED): the file is untouched and would be read again if needed.

    Pages of anonymous memory are left alone: dropping them would zero data that another view may still
    read. The file mappings are listed once (psutil's memory maps), at the first tensor handed over, so
    that a load that converts nothing never pays for listing them.
    """
    import ctypes
    import mmap

    files: list[tuple[int, int]] | None = None
    advice = getattr(mmap, "MADV_DONTNEED", None)
    libc = ctypes.CDLL(None, use_errno=True) if advice is not None else None
    page = mmap.PAGESIZE

    def release(t: torch.Tensor) -> None:
        nonlocal files
        start, end = t.data_ptr(), t.data_ptr() + t.numel() * t.element_size()
        first, last = -(-start // page) * page, end // page * page
        if libc is None or last <= first or not t.is_contiguous():
            return
        if files is None:
            files = _file_mappings()
        if any(lo <= first and last <= hi for lo, hi in files):
            libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), advice)

    return release


def _file_mappings() -> list[tuple[int, int]]:
    """(start, end) addresses of this process's memory mapped from files."""
    import psutil

    try:
        maps = psutil.Process().memory_maps(grouped=False)
        return [tuple(int(v, 16) for v in m.addr.split("-")) for m in maps if m.path.startswith("/")]
    except (psutil.Error, OSError, ValueError, AttributeError):
        return []
