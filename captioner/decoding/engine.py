"""The decode loop: encode images once, then one batched model step per token for every row of every
(image, configuration) search, with full per-token records.

Comparing four strategies on one image costs about as much as the widest of them, and captioning B
images together reads the decoder's weights once per step for all of them. Each search (search.py)
only sees its rows' next-token logits and says which rows continue with which tokens; the engine keeps
the model's cache in step. Rows are ordered image by image, so each image's rows are consecutive.
A forced prefix (prefix.py) is taken by every search for its first steps; beam searches record their
beam tree (beam_tree.py).
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple, Sequence

import torch
from PIL import Image

from captioner.config import BEAM_STRATEGIES, DecodingConfig
from captioner.decoding.beam_tree import TreeRecorder
from captioner.decoding.confidence import caption_confidence, is_out_of_world
from captioner.decoding.contrastive import ContrastiveSearch
from captioner.decoding.diverse import GroupBeamSearch
from captioner.decoding.prefix import Prefix, check_prefix_ids, prefix_ids
from captioner.decoding.processors import Processors
from captioner.decoding.results import Alternative, Caption, DecodeResult, EncodedImage
from captioner.decoding.search import BeamSearch, Hypothesis, RowSearch, Search
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


def decode(model: CaptionModel, encoded: EncodedImage, configs: Configs, prefix: Prefix = None) -> list[DecodeResult]:
    """Decode every configuration on one encoded image, all in the same batched steps.

    `prefix` (token ids, or text through the model's tokenizer) starts every caption verbatim; decoding
    continues from it with the model's own distribution (prefix.py: PrefixError for one it cannot take)."""
    return _decode(model, encoded.memory, 1, configs, encoded.timings, prefix)[0]


def caption_image(
    model: CaptionModel, image: Image.Image, configs: Configs | None = None, prefix: Prefix = None
) -> list[DecodeResult]:
    """Encode `image` once and decode it with each configuration (default: the model's own)."""
    return decode(model, encode_image(model, image), [model.default_decoding] if configs is None else configs, prefix)


def caption_images(
    model: CaptionModel, images: Sequence[Image.Image], configs: Configs | None = None, prefix: Prefix = None
) -> list[list[DecodeResult]]:
    """Caption several images with each configuration: per image, one DecodeResult per configuration.

    The images are encoded together and decoded together (one model step per token for all of them),
    with the same results as captioning them one by one."""
    if not images:
        return []
    memory, timings = _encode(model, images)
    return _decode(model, memory, len(images), [model.default_decoding] if configs is None else configs, timings, prefix)


def _encode(model: CaptionModel, images: Sequence[Image.Image]) -> tuple[Any, dict[str, float]]:
    """The images' memory, and each image's share of the seconds spent."""
    t0 = time.perf_counter()
    pixels = model.preprocess(list(images))
    t1 = time.perf_counter()
    with torch.inference_mode():
        memory = model.encode(pixels)
    t2 = time.perf_counter()
    return memory, {"preprocess": (t1 - t0) / len(images), "encode": (t2 - t1) / len(images)}


def make_search(config: DecodingConfig, eos_token_id: int, tree: TreeRecorder | None = None) -> Search:
    """The search of a configuration; beam searches record into `tree`."""
    if config.strategy == "beam":
        return BeamSearch(config, eos_token_id, tree)
    if config.strategy == "group_beam":
        return GroupBeamSearch(config, eos_token_id, tree)
    if config.strategy == "contrastive":
        return ContrastiveSearch(config, eos_token_id)
    return RowSearch(config, eos_token_id)


@torch.inference_mode()
def _decode(
    model: CaptionModel, memory: Any, num_images: int, configs: Configs, timings: dict[str, float], prefix: Prefix = None
) -> list[list[DecodeResult]]:
    """Every configuration on each of the `num_images` images of `memory`, in the same batched steps."""
    if isinstance(configs, DecodingConfig):
        configs = [configs]
    forced = prefix_ids(model, prefix)
    configs = [_with_room_for(c.validate().within_limit(model.max_new_tokens_limit)[0], forced, model) for c in configs]
    t_start = time.perf_counter()
    trees = [
        [TreeRecorder(model.bos_token_id) if c.strategy in BEAM_STRATEGIES else None for c in configs] for _ in range(num_images)
    ]
    searches = [[make_search(c, model.eos_token_id, t) for c, t in zip(configs, per_image)] for per_image in trees]
    records = _run(model, memory, searches, configs, forced)
    decode_share = (time.perf_counter() - t_start) / num_images
    results = []
    for per_image, per_image_trees in zip(searches, trees):
        image_results = []
        for config, search, tree in zip(configs, per_image, per_image_trees):
            found = search.results()
            hyps = [_to_caption(model, records, h) for h in found]
            captions = hyps[: config.num_return_sequences]
            beams = hyps if config.strategy in BEAM_STRATEGIES else captions
            beam_tree = None if tree is None else tree.tree([h.node for h in found], model.token_text, config.length_penalty)
            image_results.append(DecodeResult(config, captions, beams, {**timings, "decode": decode_share}, beam_tree))
        results.append(image_results)
    return results


def _with_room_for(config: DecodingConfig, forced: list[int], model: CaptionModel) -> DecodingConfig:
    """`config` with max_new_tokens counting the prefix and leaving at least one token after it, within the model's limit."""
    if not forced or config.max_new_tokens > len(forced):
        return config
    return config.with_(max_new_tokens=min(len(forced) + 1, model.max_new_tokens_limit))


def _run(
    model: CaptionModel, memory: Any, searches: list[list[Search]], configs: list[DecodingConfig], forced: list[int]
) -> list[StepRecord]:
    """The loop: one model step for all live rows, then each search advances on its rows (or takes the
    forced token). Contrastive search chooses a token one step after it proposed candidates: one more step."""
    need_weights = any(c.output_attentions for c in configs)
    num_alternatives = max(c.num_alternatives for c in configs)
    processors = [Processors.for_config(c, model.eos_token_id) for c in configs]
    ids = torch.full((sum(s.num_rows for per_image in searches for s in per_image), 1), model.bos_token_id, dtype=torch.long)
    cache = None
    records: list[StepRecord] = []
    for step in range(max(c.max_new_tokens for c in configs) + 1):
        image_rows = [sum(s.num_rows for s in per_image) for per_image in searches]
        out = model.step(memory, ids, cache, need_weights, image_rows)
        logits, cache, attention = out
        logits = logits.float()
        if step == 0:
            check_prefix_ids(forced, logits.size(-1))
        logprobs = logits.log_softmax(dim=-1)
        records.append(_record(logprobs, attention, num_alternatives))
        token = forced[step] if step < len(forced) else None
        rows, tokens = _advance(searches, processors, step, logits, logprobs, ids, getattr(out, "hidden", None), token)
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


def _advance(
    searches: list[list[Search]],
    processors: list[Processors],
    step: int,
    logits: torch.Tensor,
    logprobs: torch.Tensor,
    ids: torch.Tensor,
    hidden: torch.Tensor | None,
    forced: int | None,
) -> tuple[list[int], list[int]]:
    """Each search consumes its rows of this step (or takes the `forced` token): the rows (of the batch)
    that go on, and their tokens.

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
        search, h = searches[i][j], None if hidden is None else hidden[f : f + n]
        if forced is None:
            going_on = search.advance(step, processed[i, j], logprobs[f : f + n], f, h)
        else:
            going_on = search.force(step, forced, processed[i, j], logprobs[f : f + n], f, h)
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
        forced=[s.forced for s in path],
        attentions=attention_maps,
        confidence=confidence,
        out_of_world=is_out_of_world(confidence, model.calibration),
    )
