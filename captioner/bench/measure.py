"""Timing, the machine, and the load other processes put on it while timings run."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import threading
import time
from typing import Any, Callable

GB = 1e9


def stats(times: list[float]) -> dict[str, Any]:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": len(times)}


def measure(fn: Callable[[], Any], runs: int, warmup: int = 1) -> dict[str, Any]:
    """Median / min / max seconds of `fn` over `runs` runs after `warmup` unrecorded ones."""
    return measure_interleaved({"fn": fn}, runs, warmup)["fn"]


def measure_interleaved(fns: dict[str, Callable[[], Any]], runs: int, warmup: int = 1) -> dict[str, dict[str, Any]]:
    """`measure` for several contenders, their runs interleaved (a b a b ...) so that a change of load
    on a shared machine falls on all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: stats(t) for name, t in times.items()}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class OtherLoad:
    """Samples, in a background thread, how much CPU other processes use while timings run: on a
    shared machine that is what makes numbers noisy, so the report says it."""

    def __init__(self, every_s: float = 1.0):
        self.samples: list[float] = []
        self.paused = False  # set while nothing is timed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)

    def _run(self, every_s: float) -> None:
        import psutil

        me = psutil.Process()
        me.cpu_percent(None)
        psutil.cpu_percent(None)
        while not self._stop.wait(every_s):
            total = psutil.cpu_percent(None) * (os.cpu_count() or 1)  # percent of one core, all cores
            mine = me.cpu_percent(None)
            if self.paused or me.children():  # memory children are ours, and are not timed
                continue
            self.samples.append(max(0.0, total - mine) / 100.0)  # cores busy elsewhere

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=2)

    def summary(self) -> dict[str, float]:
        s = self.samples or [0.0]
        return {"mean_cores": statistics.fmean(s), "max_cores": max(s), "share_above_half_core": sum(x > 0.5 for x in s) / len(s)}


def machine_info() -> dict[str, Any]:
    import psutil
    import torch
    import transformers

    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the widest vector instructions torch uses
        "amx": torch.cpu._is_amx_tile_supported(),
        "avx512_bf16": torch.cpu._is_avx512_bf16_supported(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "memory_gb": psutil.virtual_memory().total / GB,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
    }


def measure_bandwidth(runs: int) -> dict[str, Any]:
    """Streaming read bandwidth: sum of a 1 GiB buffer (far larger than any cache)."""
    import torch

    buf = torch.ones(2**30 // 4)  # written once, so the pages are real
    r = measure(buf.sum, runs)
    del buf
    return {**r, "bytes": 2**30, "gb_per_s": 2**30 / r["median_s"] / GB}


def measure_matmul(dtype_name: str, runs: int) -> dict[str, Any]:
    """Matmul throughput in `dtype`: the encoder's own shapes (197 tokens x 768 -> 3072) and a large square one."""
    import torch
    import torch.nn.functional as F

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    x = torch.randn(197, 768).to(dtype)
    w = torch.randn(3072, 768).to(dtype)
    n_inner = 20

    def enc():
        for _ in range(n_inner):
            F.linear(x, w)

    r_enc = measure(enc, runs)
    a = torch.randn(2048, 2048).to(dtype)
    b = torch.randn(2048, 2048).to(dtype)
    r_sq = measure(lambda: a @ b, runs)
    return {
        "encoder_shape_gflops": 2 * 197 * 768 * 3072 * n_inner / r_enc["median_s"] / 1e9,
        "square_2048_gflops": 2 * 2048**3 / r_sq["median_s"] / 1e9,
    }
