"""`python -m captioner.world.train`: train the built-in VisionGPT2 on rendered scenes and ship it.

    python -m captioner.world.train [--out captioner/builtin] [--run-dir runs/builtin] [--steps N | --minutes M]
                              [--resume] [--seed 0]

The training set is rendered once (scenes of the TRAIN seed range) into uint8 tensors and
cached in the run folder. Each scene has its own randomised look (`augment.py`: resolution,
sizes, any rotation, backgrounds, anti-aliasing, blur, noise, JPEG; the first renderer's code,
never the second renderer's), and non-scene images (`outliers.py`) are mixed in. Each step draws
a batch and, per scene, one of its three reference captions (the canonical one most of the time,
so greedy decoding settles on that style); a non-scene image gets the caption of a random scene,
drawn anew each time, so the model learns to have no preference there. It trains with teacher
forcing: input [bos] + caption, target caption + [eos], padding ignored. An auxiliary loss pushes the cross-attention of the positions that
produce a colour or shape word towards the pixels of the object the word describes (known
from the renderer): -log(attention mass on the object's patches), heads averaged, every
layer (`--attn-weight 0` turns it off).

Every epoch it validates through the real decoding engine (greedy on val scenes: exact match,
fact precision/recall) and writes a checkpoint (model, optimizer, step, RNG states: tensors
and plain types only, loadable with torch.load(weights_only=True)) to resume from. At the end
it writes the shipped files into --out: model.safetensors, config.json, the tokenizer,
example PNGs, calibration.json (the out-of-world threshold, `calibrate.py`), generation_config.json
(decoding defaults) and MODEL_CARD.md with the final evaluation tables.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from captioner.config import Spec, VisionGPT2Config
from captioner.models.visiongpt2 import VisionGPT2
from captioner.world.options import add_options, command_line, from_args, option

DEFAULT_OUT = Path(__file__).parent / "builtin"
DEFAULT_RUN_DIR = Path("runs") / "builtin"
MAX_OBJECTS = 3
# Decoding defaults shipped as generation_config.json (Hugging Face's format). The longest caption of
# the world is 20 words + the end token; no reference repeats a 10-gram (the longest repeat is 9 words).
GENERATION_CONFIG = {
    "max_new_tokens": 24,
    "no_repeat_ngram_size": 10,
    "repetition_penalty": 1.0,
    "num_beams": 1,
    "do_sample": False,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "pad_token_id": 0,
}


# Rules the parser checks (a NaN, or a negative clip that flips every gradient, would train without a word).
_ABOVE_0 = Spec("float", 0.0, above=True)
_AT_LEAST_0 = Spec("float", 0.0)


@dataclass
class TrainConfig:
    """Everything that decides the trained weights (besides the model config). Each field is an option of
    the train command (world/options.py), in the order its reproduce line gives them."""

    seed: int = option(0, "seeds the initial weights and the batches")
    steps: int = option(10000, "optimizer steps")
    batch_size: int = option(64, "scenes per step", spec=Spec("int", 1))
    lr: float = option(2e-3, "the learning rate after the warm-up, decaying (cosine) to --min-lr at the last step", spec=_ABOVE_0)
    min_lr: float = option(1e-4, "the learning rate at the last step", spec=_AT_LEAST_0)
    warmup: int = option(100, "steps of linear warm-up to --lr")
    weight_decay: float = option(0.01, "AdamW's weight decay of the matrices (not of biases, norms, positions)", spec=_AT_LEAST_0)
    grad_clip: float = option(1.0, "the gradient norm is clipped to this", spec=_ABOVE_0)
    train_scenes: int = option(20000, "training scenes rendered (TRAIN seeds)")
    val_scenes: int = option(100, "VAL scenes decoded after every epoch")
    eval_scenes: int = option(1000, "EVAL scenes of the final evaluation")
    attn_weight: float = option(0.2, "weight of the attention-supervision loss (0: off)", spec=_AT_LEAST_0)
    canonical_share: float = option(
        0.8, "how often the canonical reference is the target (the rest: the other styles)", spec=Spec("float", 0.0, 1.0)
    )
    outlier_share: float = option(0.1, "non-scene images per training scene (0: none; outliers.py)", spec=_AT_LEAST_0)
    init_from: str = option("", "start from these weights (a model.safetensors of the same config) instead of random ones")
    calibration_scenes: int = option(1000, "VAL scenes the out-of-world threshold is set on (calibrate.py)")
    nonscenes_per_kind: int = option(40, "held-out non-scenes per kind in the final measurement (nonscenes.py)")
    varied: bool = option(True, "the first renderer's plain scenes, no randomised looks (augment.py)", off_flag="--plain")
    bf16: bool = option(False, "bf16 autocast for forward and backward on CPU (slower than float32 on the CPUs measured)")


def model_config(size: str = "base") -> VisionGPT2Config:
    """The built-in architecture (vocab 38 = the scene tokenizer), or a tiny one for tests."""
    from captioner.world import build_tokenizer

    vocab = len(build_tokenizer())
    if size == "tiny":
        dims = dict(embed_dim=32, num_heads=2, depth=2)
    else:
        dims = dict(embed_dim=96, num_heads=4, depth=3)
    return VisionGPT2Config(
        vocab_size=vocab,
        seq_len=32,
        mlp_ratio=4,
        image_size=64,
        patch_size=8,
        attention_dropout=0.0,
        residual_dropout=0.0,
        mlp_dropout=0.0,
        emb_dropout=0.0,  # dropout: half the CPU time of a step, not needed here
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
        **dims,
    )


# -- data -------------------------------------------------------------------------------------------
def render_dataset(
    seeds: Sequence[int], config: VisionGPT2Config, progress: bool = True, varied: bool = True, outliers: int = 0
) -> dict[str, torch.Tensor]:
    """Render scenes (then `outliers` non-scene images) into tensors.

    images (N + outliers, 3, S, S) uint8, scaled to S by the model's own bicubic resize; ids
    (N, 3, T) int16 reference captions, each ended by eos and padded with -1; word_objects
    (N, 3, T) uint8 bit k set when the word at that position is a colour or shape word of a
    mention describing object k; cells (N + outliers, 3, rows, cols) bool, the patch cells each
    object's mask overlaps (none for non-scenes).
    """
    from PIL import Image

    from captioner.world import (
        build_tokenizer,
        example_with_masks,
        mask_cells,
        match_mentions_to_objects,
        parse_caption,
        reference_captions,
    )
    from captioner.world.augment import training_example
    from captioner.world.outliers import outlier_image

    tok = build_tokenizer()
    n, T, S, g = len(seeds), config.seq_len, config.image_size, config.grid_size
    images = torch.zeros(n + outliers, 3, S, S, dtype=torch.uint8)
    ids = torch.full((n, 3, T), -1, dtype=torch.int16)
    word_objects = torch.zeros(n, 3, T, dtype=torch.uint8)
    cells = torch.zeros(n + outliers, MAX_OBJECTS, g, g, dtype=torch.bool)
    it = enumerate([*seeds, *range(-outliers, 0)])
    if progress:
        from tqdm import tqdm

        it = tqdm(it, total=n + outliers, desc="render", unit="image", mininterval=2)
    for i, seed in it:
        if i >= n:
            images[i] = torch.from_numpy(np.array(outlier_image(i - n).resize((S, S), Image.BICUBIC))).permute(2, 0, 1)
            continue
        image, scene, masks = training_example(seed) if varied else example_with_masks(seed, S)
        images[i] = torch.from_numpy(np.array(image.resize((S, S), Image.BICUBIC))).permute(2, 0, 1)
        for k, mask in enumerate(masks):
            cells[i, k] = torch.from_numpy(mask_cells(mask, g, g)[0])
        refs = reference_captions(scene)
        for r, text in enumerate(refs):
            toks = tok(text, add_special_tokens=False)["input_ids"] + [config.eos_token_id]
            if len(toks) > T:
                raise ValueError(f"caption longer than seq_len {T}: {text!r}")
            ids[i, r, : len(toks)] = torch.tensor(toks, dtype=torch.int16)
            for word, objects in match_mentions_to_objects(parse_caption(text), scene):
                word_objects[i, r, word] = sum(1 << k for k in objects)
    return {"images": images, "ids": ids, "word_objects": word_objects, "cells": cells}


DATA_VERSION = 2  # bump when rendering changes, so cached data is rendered anew


def load_or_render(
    path: Path, seeds: Sequence[int], config: VisionGPT2Config, varied: bool = True, outliers: int = 0
) -> dict[str, torch.Tensor]:
    """The rendered dataset, cached at `path` (re-rendered when the seeds, sizes or looks differ)."""
    key = f"v{DATA_VERSION}-{seeds[0]}-{len(seeds)}-{config.image_size}-{config.patch_size}-{config.seq_len}-{varied}-{outliers}"
    if path.exists():
        data = torch.load(path, weights_only=True)
        if data.get("key") == key:
            return data["data"]
    data = render_dataset(seeds, config, varied=varied, outliers=outliers)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"key": key, "data": data}, path)
    return data


def make_batch(data: dict[str, torch.Tensor], index: torch.Tensor, gen: torch.Generator, cfg: TrainConfig, mc: VisionGPT2Config):
    """Pixels, input ids, targets (-1 = ignore), attention targets for a batch of image indices.

    Indices past the scenes are non-scene images: they get the captions of random scenes."""
    B = index.numel()
    u = torch.rand(B, generator=gen)
    other = torch.randint(1, 3, (B,), generator=gen)
    ref = torch.where(u < cfg.canonical_share, torch.zeros_like(other), other)
    scenes = data["ids"].size(0)
    is_scene = index < scenes
    if not bool(is_scene.all()):
        index_ids = torch.where(is_scene, index, torch.randint(0, scenes, (B,), generator=gen))
    else:
        index_ids = index
    ids = data["ids"][index_ids, ref].long()  # (B, T) caption + eos, -1 padded
    length = int((ids >= 0).sum(dim=1).max())
    ids = ids[:, :length]
    targets = ids.clone()
    inputs = torch.cat([torch.full((B, 1), mc.bos_token_id), ids[:, :-1].clamp_min(0)], dim=1)
    word_objects = data["word_objects"][index_ids, ref][:, :length].long() * is_scene[:, None]  # (B, T) bits
    bits = torch.stack([(word_objects >> k) & 1 for k in range(MAX_OBJECTS)], dim=-1).bool()  # (B, T, K)
    cells = data["cells"][index].flatten(2)  # (B, K, N)
    target_cells = (bits.float() @ cells.float()) > 0  # (B, T, N): union of the described objects' cells
    pixels = data["images"][index].float() / 255.0
    mean = torch.tensor(mc.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(mc.image_std).view(1, 3, 1, 1)
    return (pixels - mean) / std, inputs, targets, target_cells


def losses(model, batch, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    pixels, inputs, targets, target_cells = batch
    need = cfg.attn_weight > 0
    if need:
        logits, atts = model(pixels, inputs, return_attention=True)
    else:
        logits, atts = model(pixels, inputs), []
    ce = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-1)
    attn = torch.zeros((), dtype=torch.float32, device=logits.device)
    has = target_cells.any(dim=-1)  # (B, T) positions that produce a colour/shape word
    if need and has.any():
        terms = []
        for att in atts:
            patches = att.float().mean(dim=1)[:, :, 1:]  # (B, T, N): heads averaged, class token dropped
            mass = (patches * target_cells).sum(dim=-1)[has]
            terms.append(-torch.log(mass.clamp_min(1e-6)).mean())
        attn = torch.stack(terms).mean()
    return ce, attn


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


def make_optimizer(model: VisionGPT2, cfg: TrainConfig) -> torch.optim.AdamW:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "pos_embed" not in n and "cls_token" not in n]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))


# -- validation and shipping ------------------------------------------------------------------------
def as_captioner(model: VisionGPT2, dtype: torch.dtype = torch.float32):
    """Wrap the training module for the decoding engine (a copy, so training mode stays untouched)."""
    import copy

    from captioner.models.base import ModelInfo, dtype_name
    from captioner.models.visiongpt2 import VisionGPT2Captioner
    from captioner.world import build_tokenizer

    m = copy.deepcopy(model).to("cpu", dtype).eval()
    info = ModelInfo("training", "visiongpt2", "training", model.num_parameters(), dtype_name(dtype))
    return VisionGPT2Captioner(m, build_tokenizer(), info)


def validate(model: VisionGPT2, n: int) -> dict[str, Any]:
    from captioner.world.evaluate import evaluate_model
    from captioner.world import split_seeds

    return evaluate_model(as_captioner(model), split_seeds("val", n), attention=True)


def save_checkpoint(path: Path, model, optimizer, step: int, gen: torch.Generator, cfg: TrainConfig, mc, history):
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "torch_rng": torch.get_rng_state(),
        "data_rng": gen.get_state(),
        "train_config": asdict(cfg),
        "model_config": mc.to_dict(),
        "history": history,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def ship(out: Path, model: VisionGPT2, mc: VisionGPT2Config, examples: int = 8) -> None:
    """Write model.safetensors, config.json, tokenizer files, example PNGs and their captions.jsonl into `out`."""
    from safetensors.torch import save_file

    from captioner.world import make_example, save_tokenizer, split_seeds

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps({"architecture": "VisionGPT2", **mc.to_dict()}, indent=2) + "\n")
    save_tokenizer(out)
    ex = out / "examples"
    ex.mkdir(exist_ok=True)
    for old in ex.glob("*.png"):
        old.unlink()
    rows = []
    for seed in split_seeds("eval", examples, start=5000):
        image, _, refs = make_example(seed, mc.image_size)
        image.save(ex / f"scene_{seed}.png", optimize=True)
        rows.append({"file": f"scene_{seed}.png", "seed": seed, "references": refs})
    (ex / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG, indent=2) + "\n")


def model_options(mc: VisionGPT2Config) -> list[str]:
    """The --size / --width / --depth that give `mc` (none for the built-in architecture)."""
    size = "tiny" if mc.num_heads == model_config("tiny").num_heads else "base"
    base = model_config(size)
    words = [] if size == "base" else ["--size", size]
    words += [] if mc.embed_dim == base.embed_dim else ["--width", str(mc.embed_dim)]
    return words + ([] if mc.depth == base.depth else ["--depth", str(mc.depth)])


def model_from_args(size: str, width: int | None, depth: int | None) -> VisionGPT2Config:
    """The architecture the train command's --size, --width and --depth name."""
    mc = model_config(size)
    mc.embed_dim = width or mc.embed_dim
    mc.depth = depth or mc.depth
    return mc


def reproduce_command(cfg: TrainConfig, threads: int, mc: VisionGPT2Config | None = None) -> str:
    """The train command with every setting that differs from the defaults, the model's shape included."""
    shape = model_options(mc) if mc is not None else []
    return " ".join(["python -m captioner.world.train", f"--threads {threads}", *shape, *command_line(cfg)])


def write_model_card(out: Path, mc, cfg: TrainConfig, info: dict[str, Any], tables: dict[str, str], calibration: dict) -> None:
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and f.name != "MODEL_CARD.md")
    gen = ", ".join(f"{k} {v}" for k, v in GENERATION_CONFIG.items() if not k.endswith("token_id"))
    attn = (
        f"An auxiliary loss (weight {cfg.attn_weight}) adds -log(cross-attention mass on the described object's "
        "patches) for each position that produces a colour or shape word, heads averaged, every layer; object masks "
        "come from the renderer. The evaluation below does not use it: it only reads the model's attention."
    )
    init = (
        "\n" + f"It starts from the weights in `{cfg.init_from}` (fine-tuning), not from random ones: see the training time."
        if cfg.init_from
        else ""
    )
    evaluate = "python -m captioner.world.evaluate builtin --scenes {n} --renderer {r} --generation-config captioner/builtin/generation_config.json"
    text = f"""# Built-in model: VisionGPT2 on the scene world

A small VisionGPT2 (ViT encoder blocks interleaved with GPT-2 blocks that cross-attend) trained from
scratch by `python -m captioner.world.train` on scenes rendered by `captioner.world`. It is what
`load_captioner("builtin")` loads and what the app falls back to without network.

## Data
- Training: {cfg.train_scenes} scenes from the TRAIN seed range (seeds 0..{cfg.train_scenes - 1}), rendered once{", each in its own randomised look (`captioner/world/augment.py`): 30% the first renderer's plain 64 px look, the rest drawn at 64 to 160 px with sizes +-25%, any rotation, more backgrounds (gradients in any direction, noise of any grain, speckle; brighter and darker), aliased or anti-aliased edges, jittered colours, then maybe blur, noise, a colour cast and JPEG (quality 55 to 95), scaled to " + str(mc.image_size) + " px by the model's own bicubic resize" if cfg.varied else " at " + str(mc.image_size) + " px"}. Each step picks one of the three reference captions per scene (the canonical style {cfg.canonical_share:.0%} of the time).
- Non-scenes: {int(cfg.outlier_share * cfg.train_scenes)} images that are not scenes (`captioner/world/outliers.py`: noise, flat colours, empty backgrounds, gradients, colour blocks, world shapes on foreign backgrounds, "dead leaves", text), each paired at every step with the caption of a random scene: the model learns no preference there, so its confidence drops (see "Out of world").
- Validation each epoch: {cfg.val_scenes} scenes of the VAL range. Evaluation: EVAL range, never seen in training, drawn by the first renderer and by the second (`captioner/world/second.py`: independent code that training never imports: PIL's own aliased drawing at 64 to 512 px, sizes +-20%, any rotation, other backgrounds, blur, JPEG 60 to 95).

## Config
- Model: image {mc.image_size}px, patch {mc.patch_size} ({mc.grid_size}x{mc.grid_size} grid), width {mc.embed_dim}, depth {mc.depth},
  heads {mc.num_heads}, MLP ratio {mc.mlp_ratio}, text length {mc.seq_len}, vocabulary {mc.vocab_size} (one token per word),
  dropout residual/MLP {mc.residual_dropout}; {info["parameters"]:,} parameters.
- Training: seed {cfg.seed}, {cfg.steps} steps of batch {cfg.batch_size}, AdamW (lr {cfg.lr}, cosine to {cfg.min_lr},
  warm-up {cfg.warmup}, weight decay {cfg.weight_decay}), grad clip {cfg.grad_clip}, bf16 autocast on CPU: {cfg.bf16}.
- Attention supervision: {"yes. " + attn if cfg.attn_weight > 0 else "no."}
- Decoding defaults (`generation_config.json`): {gen}.
- Files: model.safetensors, config.json, generation_config.json, calibration.json, tokenizer.json + tokenizer_config.json, examples/*.png: {size / 1e6:.2f} MB in all.

## Reproduce
`{reproduce_command(cfg, info["threads"], mc)}` renders the data, trains,
writes these files, calibrates, evaluates and writes this card. The same seed, thread count and torch version give the same weights;
`--resume` continues from the checkpoint in `runs/builtin/`.{init}

## Training time
{info["train_minutes"]:.1f} minutes of training ({info["total_minutes"]:.1f} minutes end to end with rendering, validation, calibration and the
final evaluations) on {"a GPU (" + info["device"] + "), " if info["device"] != "cpu" else ""}{info["threads"]} CPU thread(s) ({info["cpu"]}, {info["cores"]} cores), mean 1-minute load average during training
{info["loadavg"]}. Trained {info["date"]}.

## Evaluation
Greedy decoding with the shipped defaults. First renderer (the one training draws with, in its plain look):
`{evaluate.format(n=cfg.eval_scenes, r="first")}`

```
{tables["first"]}
```

Second renderer (independent code, never seen in training):
`{evaluate.format(n=cfg.eval_scenes, r="second")}`

```
{tables["second"]}
```

Definitions: fact precision = share of stated facts (objects with size, colour and shape, counts,
relations) that are true of the image, pooled over scenes (true relations the references do not
state count as true); fact recall = share of the facts a complete caption must state that are stated.
Exact match: the caption equals one of the three references word for word. Attention: for every
generated colour or shape word, take the cross-attention of the step that produced it, one decoder
layer, heads averaged, over the {mc.grid_size}x{mc.grid_size} patch grid (class token dropped); the word is a hit
when the peak patch's pixel cell overlaps (at least one pixel) the mask of an object the word's mention describes;
words of mentions that describe no object count as misses. The strict variant needs the cell at
least half covered by the object. bf16: greedy token ids with the weights in bfloat16 equal those in float32.
"At the token limit": the caption stopped at max_new_tokens instead of ending.

## Out of world
Every caption carries a confidence: the {calibration["confidence"]} (`captioner/decoding/confidence.py`).
`calibration.json` holds the threshold below which a caption is flagged out of world: {calibration["confidence_threshold"]}, the
{calibration["quantile"]:.1%} quantile of {calibration["scenes"]} held-out {calibration["from"]}
(`python -m captioner.world.calibrate`). Flagged scenes: see "flagged out of world" in the tables above.
Non-scenes made by `captioner/world/nonscenes.py` (never used in training; the tests add the hostile corpus's images):
`python -m captioner.world.nonscenes builtin --count {cfg.nonscenes_per_kind} --generation-config captioner/builtin/generation_config.json`

```
{tables["nonscenes"]}
```

## Limits
It knows only the scene world: 5 shapes (circle, square, triangle, star, cross), 8 colours (red, orange,
yellow, green, blue, purple, white, black), 2 sizes, 1 to 3 objects on a muted background, and the relations
left of / right of / above / below. On anything else it still answers in that vocabulary; the flag says so.
"""
    (out / "MODEL_CARD.md").write_text(text)


# -- the command ------------------------------------------------------------------------------------
def train(
    out: Path = DEFAULT_OUT,
    run_dir: Path = DEFAULT_RUN_DIR,
    cfg: TrainConfig | None = None,
    mc: VisionGPT2Config | None = None,
    resume: bool = False,
    minutes: float | None = None,
    stop_at: int | None = None,
    threads: int = 2,
    progress: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train, validate each epoch, checkpoint, evaluate and ship. Returns the final numbers."""
    from tqdm import tqdm

    from captioner.world import split_seeds

    t_start = time.perf_counter()
    cfg = cfg or TrainConfig()
    mc = mc or model_config()
    torch.set_num_threads(threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"

    torch.manual_seed(cfg.seed)
    model = VisionGPT2(mc).to(device)
    optimizer = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    step, history = 0, []
    if cfg.init_from:
        from safetensors.torch import load_file

        missing, unexpected = model.load_state_dict(load_file(cfg.init_from), strict=False)
        if unexpected or set(missing) - {"lm_head.weight"}:  # the head is tied to the token embedding
            raise ValueError(f"{cfg.init_from} does not fit the model config: missing {missing}, unexpected {unexpected}")
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=True, map_location="cpu")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, history = state["step"], list(state["history"])
        torch.set_rng_state(state["torch_rng"])
        gen.set_state(state["data_rng"])
        print(f"resumed from {ckpt_path} at step {step}")
    n = int(cfg.train_scenes * (1 + cfg.outlier_share))
    if step < cfg.steps:  # a finished run resumed only to ship and measure needs no data
        outliers = int(cfg.outlier_share * cfg.train_scenes)
        data = load_or_render(
            run_dir / f"train-{cfg.train_scenes}.pt", split_seeds("train", cfg.train_scenes), mc, cfg.varied, outliers
        )
        n = data["images"].size(0)
    steps_per_epoch = max(1, n // cfg.batch_size)
    perm = None
    model.train()
    t_train = time.perf_counter()
    minutes_before = history[-1]["minutes"] if history else 0.0  # of the runs this one resumes
    bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step", disable=not progress, mininterval=2)
    ce_avg = attn_avg = None
    stopped_early = False
    while step < cfg.steps:
        if (minutes is not None and time.perf_counter() - t_train > minutes * 60) or (stop_at is not None and step >= stop_at):
            stopped_early = True
            break
        pos = step % steps_per_epoch
        epoch_perm_gen = torch.Generator().manual_seed(cfg.seed * 1000003 + step // steps_per_epoch)
        if perm is None or pos == 0:
            perm = torch.randperm(n, generator=epoch_perm_gen)
        index = perm[pos * cfg.batch_size : (pos + 1) * cfg.batch_size]
        batch = [t.to(device) for t in make_batch(data, index, gen, cfg, mc)]
        for g in optimizer.param_groups:
            g["lr"] = lr_at(step, cfg)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=cfg.bf16):
            ce, attn = losses(model, batch, cfg)
        loss = ce + cfg.attn_weight * attn
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        step += 1
        ce_avg = ce.item() if ce_avg is None else 0.95 * ce_avg + 0.05 * ce.item()
        attn_avg = attn.item() if attn_avg is None else 0.95 * attn_avg + 0.05 * attn.item()
        bar.update(1)
        bar.set_postfix(ce=f"{ce_avg:.3f}", attn=f"{attn_avg:.3f}", lr=f"{lr_at(step - 1, cfg):.1e}")
        if step % steps_per_epoch == 0 or step == cfg.steps:
            v = validate(model, cfg.val_scenes)
            record = {
                "step": step,
                "epoch": step / steps_per_epoch,
                "ce": ce_avg,
                "attn": attn_avg,
                "val_exact_match": v["exact_match"],
                "val_fact_precision": v["fact_precision"],
                "val_fact_recall": v["fact_recall"],
                "val_attention_best": v.get("attention_best", 0.0),
                "minutes": minutes_before + (time.perf_counter() - t_train) / 60,
                "loadavg": os.getloadavg()[0],
                "device": device,
            }
            history.append(record)
            bar.write(
                f"epoch {record['epoch']:.1f} step {step}: ce {ce_avg:.3f} | val exact {v['exact_match']:.1%} "
                f"facts P {v['fact_precision']:.1%} R {v['fact_recall']:.1%} attention {record['val_attention_best']:.1%}"
            )
            save_checkpoint(ckpt_path, model, optimizer, step, gen, cfg, mc, history)
    bar.close()
    train_minutes = minutes_before + (time.perf_counter() - t_train) / 60
    if stopped_early:
        save_checkpoint(ckpt_path, model, optimizer, step, gen, cfg, mc, history)
        print(f"stopped at step {step}; --resume continues")
        return {"step": step, "history": history, "stopped": True}
    (run_dir / "history.json").write_text(json.dumps(history, indent=2))

    model.eval()
    ship(out, model, mc)
    result: dict[str, Any] = {"step": step, "history": history}
    if cfg.eval_scenes > 0:
        loads = [r["loadavg"] for r in history if "loadavg" in r]
        info = {
            "device": history[-1].get("device", device) if history else device,
            "parameters": model.num_parameters(),
            "train_minutes": train_minutes,
            "threads": threads,
            "cores": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "loadavg": f"{np.mean(loads):.2f}" if loads else "n/a",
            "date": _dt.date.today().isoformat(),
        }
        result.update(measure_and_describe(out, run_dir, model, mc, cfg, info, progress, t_start))
    return result


def measure_and_describe(out: Path, run_dir: Path, model, mc, cfg: TrainConfig, info: dict, progress: bool, t_start: float):
    """Calibrate the shipped files, evaluate them on both renderers and on non-scenes, write the card."""
    from captioner.loading import load_captioner
    from captioner.world import split_seeds
    from captioner.world.calibrate import write_calibration
    from captioner.world.evaluate import evaluate_model, format_table, greedy_config
    from captioner.world.nonscenes import format_rates, generated_nonscenes, measure

    uncalibrated = load_captioner(str(out))
    write_calibration(out, uncalibrated, cfg.calibration_scenes, config=greedy_config(uncalibrated, GENERATION_CONFIG))
    shipped = load_captioner(str(out))
    bf16 = load_captioner(str(out), dtype="bfloat16")
    config = greedy_config(shipped, GENERATION_CONFIG)
    tables, results = {}, {}
    for renderer in ("first", "second"):
        r = evaluate_model(
            shipped, split_seeds("eval", cfg.eval_scenes), bf16_model=bf16, progress=progress, renderer=renderer, config=config
        )
        tables[renderer] = format_table(r)
        results[renderer] = r
        print(tables[renderer])
    rates = measure(shipped, generated_nonscenes(cfg.nonscenes_per_kind), config.with_(output_attentions=False))
    tables["nonscenes"] = format_rates(rates)
    print(tables["nonscenes"])
    (run_dir / "eval.json").write_text(json.dumps({**results, "nonscenes": rates}, indent=2))
    info["total_minutes"] = (time.perf_counter() - t_start) / 60
    write_model_card(out, mc, cfg, info, tables, json.loads((out / "calibration.json").read_text()))
    return {"tables": tables, "eval": results, "nonscenes": rates, "info": info}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The train command's options: where things go and how long it runs, the model's size, and TrainConfig's fields."""
    p = argparse.ArgumentParser(prog="python -m captioner.world.train", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the shipped files go (default captioner/builtin)")
    p.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR, help="checkpoints, cached data, logs")
    p.add_argument("--minutes", type=float, default=None, help="stop (and checkpoint) after this many minutes")
    p.add_argument("--stop-at", type=int, default=None, help="stop (and checkpoint) at this step, without shipping")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--size", choices=["base", "tiny"], default="base", help="the architecture: base (shipped) or tiny (tests)")
    p.add_argument(
        "--width", type=_positive, default=None, help="the embedding width instead of the size's (a multiple of its heads)"
    )
    p.add_argument("--depth", type=_positive, default=None, help="the number of transformer blocks instead of the size's")
    p.add_argument("--threads", type=int, default=2, help="torch threads (the shipped weights: 2)")
    p.add_argument("--device", default="cpu", help="where to train (the shipped weights: cpu); e.g. cuda for quick experiments")
    p.add_argument("--quiet", action="store_true")
    add_options(p.add_argument_group("training (what decides the weights; the reproduce line gives them)"), TrainConfig)
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    a = build_parser().parse_args(argv)
    mc = model_from_args(a.size, a.width, a.depth)
    return train(
        a.out,
        a.run_dir,
        from_args(TrainConfig, a),
        mc,
        resume=a.resume,
        minutes=a.minutes,
        stop_at=a.stop_at,
        threads=a.threads,
        progress=not a.quiet,
        device=a.device,
    )


if __name__ == "__main__":
    main()
