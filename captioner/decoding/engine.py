"""The decode loop: encode images once, then one batched model step per token for every row of every
(image, configuration) search, with full per-token records.

Comparing four strategies on one image costs about as much as the widest of them, and captioning B
images together reads the decoder's weights once per step for all of them. Each search (search.py)
only sees its rows' next-token logits and says which rows continue with which tokens; the engine keeps
the model's cache in step. Rows are ordered image by image, so each image's rows are consecutive.
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple, Sequence

import torch
from PIL import Image

from captioner.config import DecodingConfig
from captioner.decoding.confidence import caption_confidence, is_out_of_world
from captioner.decoding.processors import Processors
from captioner.decoding.results import Alternative, Caption, DecodeResult, EncodedImage
from captioner.decoding.search import Hypothesis, Search, make_search
from captioner.models.base import CaptionModel

Configs = Sequence[DecodingConfig] | DecodingConfig


class StepRecord(NamedTuple):
    """What one step's raw distribution says, for every row of that step."""

    entropy: torch.Tensor  # (R,) nats
    alt_probs: torch.Tensor  # (R, k) the k most likely tokens' probabilities, best first
    alt_ids: torch.Tensor  # (R, k)
    attention: torch.Tensor | None  # (R, layers, heads, image tokens) of the new position


def encode_image(model: CaptionModel, image: Image.Image) -> EncodedImage:
    """Preprocess and encode one RGB image."""
    memory, timings = _encode(model, [image])
    return EncodedImage(memory, timings)


def decode(model: CaptionModel, encoded: EncodedImage, configs: Configs) -> list[DecodeResult]:
    """Decode every configuration on one encoded image, all in the same batched steps."""
    return _decode(model, encoded.memory, 1, configs, encoded.timings)[0]


def caption_image(model: CaptionModel, image: Image.Image, configs: Configs | None = None) -> list[DecodeResult]:
    """Encode `image` once and decode it with each configuration (default: the model's own)."""
    return decode(model, encode_image(model, image), [model.default_decoding] if configs is None else configs)


def caption_images(model: CaptionModel, images: Sequence[Image.Image], configs: Configs | None = None) -> list[list[DecodeResult]]:
    """Caption several images with each configuration: per image, one DecodeResult per configuration.

    The images are encoded together and decoded together (one model step per token for all of them),
    with the same results as captioning them one by one."""
    if not images:
        return []
    memory, timings = _encode(model, images)
    return _decode(model, memory, len(images), [model.default_decoding] if configs is None else configs, timings)


def _encode(model: CaptionModel, images: Sequence[Image.Image]) -> tuple[Any, dict[str, float]]:
    """The images' memory, and each image's share of the seconds spent."""
    t0 = time.perf_counter()
    pixels = model.preprocess(list(images))
    t1 = time.perf_counter()
    with torch.inference_mode():
        memory = model.encode(pixels)
    t2 = time.perf_counter()
    return memory, {"preprocess": (t1 - t0) / len(images), "encode": (t2 - t1) / len(images)}


@torch.inference_mode()
def _decode(model: CaptionModel, memory: Any, num_images: int, configs: Configs, timings: dict[str, float]) -> list[list[DecodeResult]]:
    """Every configuration on each of the `num_images` images of `memory`, in the same batched steps."""
    if isinstance(configs, DecodingConfig):
        configs = [configs]
    configs = [c.validate().within_limit(model.max_new_tokens_limit)[0] for c in configs]
    t_start = time.perf_counter()
    searches = [[make_search(c, model.eos_token_id) for c in configs] for _ in range(num_images)]
    records = _run(model, memory, searches, configs)
    decode_share = (time.perf_counter() - t_start) / num_images
    results = []
    for per_image in searches:
        image_results = []
        for config, search in zip(configs, per_image):
            hyps = [_to_caption(model, records, h) for h in search.results()]
            captions = hyps[: config.num_return_sequences]
            beams = hyps if config.strategy == "beam" else captions
            image_results.append(DecodeResult(config, captions, beams, {**timings, "decode": decode_share}))
        results.append(image_results)
    return results


def _run(model: CaptionModel, memory: Any, searches: list[list[Search]], configs: list[DecodingConfig]) -> list[StepRecord]:
    """The loop: one model step for all live rows, then each search advances on its rows."""
    need_weights = any(c.output_attentions for c in configs)
    num_alternatives = max(c.num_alternatives for c in configs)
    processors = [Processors.for_config(c, model.eos_token_id) for c in configs]
    ids = torch.full((sum(s.num_rows for per_image in searches for s in per_image), 1), model.bos_token_id, dtype=torch.long)
    cache = None
    records: list[StepRecord] = []
    for step in range(max(c.max_new_tokens for c in configs)):
        image_rows = [sum(s.num_rows for s in per_image) for per_image in searches]
        logits, cache, attention = model.step(memory, ids, cache, need_weights, image_rows)
        logits = logits.float()
        logprobs = logits.log_softmax(dim=-1)
        records.append(_record(logprobs, attention, num_alternatives))
        rows, tokens = _advance(searches, processors, step, logits, logprobs, ids)
        if not rows:
            break
        index = torch.tensor(rows, dtype=torch.long)
        if rows != list(range(ids.size(0))):
            cache = model.reorder_cache(cache, index)
        ids = torch.cat([ids.index_select(0, index), torch.tensor(tokens, dtype=torch.long)[:, None]], dim=1)
    return records


def _record(logprobs: torch.Tensor, attention: torch.Tensor | None, num_alternatives: int) -> StepRecord:
    probs = logprobs.exp()
    alt_probs, alt_ids = torch.topk(probs, min(num_alternatives, probs.size(-1)), dim=-1)
    entropy = torch.special.entr(probs).sum(dim=-1)
    return StepRecord(entropy, alt_probs, alt_ids, None if attention is None else attention.float())


def _advance(searches: list[list[Search]], processors: list[Processors], step: int, logits: torch.Tensor,
             logprobs: torch.Tensor, ids: torch.Tensor) -> tuple[list[int], list[int]]:
    """Each search consumes its rows of this step: the rows (of the batch) that go on, and their tokens.

    Search j of every image has configuration j; its processors run once on that configuration's rows
    of all images (they act row by row), so B images cost one call rather than B."""
    spans: dict[tuple[int, int], tuple[int, int]] = {}  # (image, configuration) -> (first row, rows), in row order
    first = 0
    for i, per_image in enumerate(searches):
        for j, search in enumerate(per_image):
            spans[i, j] = (first, search.num_rows)
            first += search.num_rows
    processed: dict[tuple[int, int], torch.Tensor] = {}
    for j, process in enumerate(processors):
        parts = [(i, *spans[i, j]) for i in range(len(searches)) if spans[i, j][1]]
        if not parts:
            continue
        scores = logprobs if searches[parts[0][0]][j].processes_logprobs else logits
        if len(parts) == 1:  # one image (decode, the app's path): its rows are a slice
            rows_j = slice(parts[0][1], parts[0][1] + parts[0][2])
        else:
            rows_j = torch.cat([torch.arange(f, f + n) for _, f, n in parts])
        out = process(ids[rows_j], scores[rows_j])
        at = 0
        for i, _, n in parts:
            processed[i, j], at = out[at : at + n], at + n
    rows, tokens = [], []
    for (i, j), (f, n) in spans.items():
        if n == 0:
            continue
        going_on = searches[i][j].advance(step, processed[i, j], logprobs[f : f + n], f)
        rows += [f + r for r in going_on.rows]
        tokens += going_on.tokens
    return rows, tokens


def _to_caption(model: CaptionModel, records: list[StepRecord], hypothesis: Hypothesis) -> Caption:
    path = hypothesis.path
    token_ids = [s.token for s in path]
    alternatives, entropies, attentions = [], [], []
    for s in path:
        rec = records[s.step]
        ids, probs = rec.alt_ids[s.row].tolist(), rec.alt_probs[s.row].tolist()
        alternatives.append([Alternative(i, model.token_text(i), p) for i, p in zip(ids, probs)])
        entropies.append(float(rec.entropy[s.row]))
        if rec.attention is not None:
            attentions.append(rec.attention[s.row])
    attention_maps = model.image_tokens_to_grid(torch.stack(attentions)).numpy() if attentions else None
    token_probs = [math.exp(s.raw_logprob) for s in path]
    confidence = caption_confidence(token_probs)
    return Caption(
        text=model.decode_text(token_ids),
        token_ids=token_ids,
        tokens=[model.token_text(i) for i in token_ids],
        token_probs=token_probs,
        processed_probs=[math.exp(s.logprob) for s in path],
        entropies=entropies,
        alternatives=alternatives,
        score=hypothesis.score,
        logprob=sum(s.raw_logprob for s in path),
        finished=hypothesis.ended,
        attentions=attention_maps,
        confidence=confidence,
        out_of_world=is_out_of_world(confidence, model.calibration),
    )
