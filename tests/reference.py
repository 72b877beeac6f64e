"""The no-cache yardsticks: VisionGPT2's forward written out from the state dict alone (the seed format), a
VisionGPT2 captioner whose every step is the model's own full `forward`, and diverse beam search and contrastive search written plainly from their papers, one full forward
pass per sequence and step.

Tests hold the engine's cached steps against them: same tokens, probabilities, scores and attention.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from captioner.models.base import StepOutput
from captioner.models.visiongpt2 import VisionGPT2, VisionGPT2Captioner


@torch.inference_mode()
def full_forward(model: VisionGPT2, pixels: torch.Tensor, ids: torch.Tensor):
    """VisionGPT2's own forward with its final hidden states: logits (B, T, V), hidden (B, T, C), attentions."""
    hidden, attentions = model.hidden_states(pixels, ids)
    return model.lm_head(hidden), hidden, attentions


class NoCacheVisionGPT2(VisionGPT2Captioner):
    """VisionGPT2 whose `step` re-runs the encoder and the whole prefix through `forward`."""

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels  # nothing is precomputed

    @torch.inference_mode()
    def step(self, memory, ids, cache, need_weights=False, image_rows=None):
        rows = torch.tensor([ids.size(0)] if image_rows is None else list(image_rows))
        pixels = memory.repeat_interleave(rows, dim=0)  # each row's image
        logits, hidden, attentions = full_forward(self.model, pixels, ids)
        last = torch.stack([att[:, :, -1] for att in attentions], dim=1) if need_weights else None  # (R, L, H, N)
        return StepOutput(logits[:, -1], None, last, hidden[:, -1])


def _last(model: VisionGPT2, pixels: torch.Tensor, tokens: list[int]):
    """Log-probabilities of the next token after `tokens` (start token included), and all hidden states."""
    logits, hidden, _ = full_forward(model, pixels, torch.tensor([tokens]))
    return logits[0, -1].float().log_softmax(-1), hidden[0].float()


@torch.inference_mode()
def contrastive_search(model: VisionGPT2, pixels: torch.Tensor, k: int, alpha: float, max_new_tokens: int) -> list[int]:
    """Su et al. 2022, eq. 5: x_t = argmax over the top-k v of (1 - alpha) p(v | x_<t) - alpha max_j s(h_v, h_x_j),
    s the cosine similarity of final hidden states, the context x_<t from the start token on."""
    bos, eos = model.config.bos_token_id, model.config.eos_token_id
    tokens = [bos]
    while len(tokens) - 1 < max_new_tokens:
        logprobs, context = _last(model, pixels, tokens)
        probs, candidates = logprobs.exp().topk(k)
        best, best_score = None, -math.inf
        for p, v in zip(probs.tolist(), candidates.tolist()):
            h_v = _last(model, pixels, tokens + [v])[1][-1]
            degeneration = max(F.cosine_similarity(h_v, h_j, dim=0).item() for h_j in context)
            score = (1 - alpha) * p - alpha * degeneration
            if score > best_score:
                best, best_score = v, score
        tokens.append(best)
        if best == eos:
            break
    return tokens[1:]


@torch.inference_mode()
def diverse_beam_search(
    model: VisionGPT2,
    pixels: torch.Tensor,
    num_beams: int,
    groups: int,
    penalty: float,
    max_new_tokens: int,
    length_penalty: float = 1.0,
) -> list[tuple[list[int], float]]:
    """Vijayakumar et al. 2016, Algorithm 1 with Hamming diversity: at each step group g extends its beams by
    log p(v) - penalty x (times v was chosen at this step by groups before g, by beams that go on), beam search
    within the group.

    Within a group, beam search as transformers runs it: the best 2 x size candidates ranked; an ended one
    among the first `size` joins the group's finished list (best `size` kept, scored sum / length **
    length_penalty); the first `size` not ended run on; a group stops when its finished list is full and
    its best running beam cannot beat the worst finished one, or at max_new_tokens. Returns every group's
    finished (tokens, score), best first."""
    bos, eos = model.config.bos_token_id, model.config.eos_token_id
    size = num_beams // groups
    running = [[([bos], 0.0)] for _ in range(groups)]
    finished: list[list[tuple[list[int], float]]] = [[] for _ in range(groups)]
    done = [False] * groups
    for t in range(1, max_new_tokens + 1):
        chosen: dict[int, int] = {}
        for g in range(groups):
            if done[g]:
                continue
            candidates = []
            for tokens, score in running[g]:
                logprobs, _ = _last(model, pixels, tokens)
                for v, lp in enumerate(logprobs.tolist()):
                    candidates.append((score + lp - penalty * chosen.get(v, 0), tokens + [v]))
            candidates.sort(key=lambda c: -c[0])
            new_running = []
            for rank, (score, tokens) in enumerate(candidates[: 2 * size]):
                if tokens[-1] == eos or t == max_new_tokens:
                    if rank < size:
                        finished[g].append((tokens[1:], score / t**length_penalty))
                        finished[g] = sorted(finished[g], key=lambda f: -f[1])[:size]
                elif len(new_running) < size:
                    new_running.append((tokens, score))
            running[g] = new_running
            full = len(finished[g]) == size
            if t == max_new_tokens or (full and new_running[0][1] / t**length_penalty <= finished[g][-1][1]):
                done[g] = True  # a group that stops chose nothing that goes on
                continue
            for tokens, _ in new_running:
                chosen[tokens[-1]] = chosen.get(tokens[-1], 0) + 1
        if all(done):
            break
    return sorted((f for group in finished for f in group), key=lambda f: -f[1])


def seed_forward(sd: dict[str, torch.Tensor], cfg, pixels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The forward pass of docs/checkpoint-format.md written out from the state dict alone."""
    C, H = cfg.embed_dim, cfg.num_heads

    def ln(x, p, eps):
        return F.layer_norm(x, (C,), sd[p + ".weight"], sd[p + ".bias"], eps)

    def lin(x, p):
        return F.linear(x, sd[p + ".weight"], sd.get(p + ".bias"))

    def attend(q, k, v, causal):
        B, Tq, _ = q.shape
        Tk = k.shape[1]
        q, k, v = (t.view(B, -1, H, C // H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (C // H) ** -0.5
        if causal:
            att = att.masked_fill(torch.ones(Tq, Tk).tril() == 0, float("-inf"))
        return (att.softmax(-1) @ v).transpose(1, 2).reshape(B, Tq, C)

    x = F.conv2d(pixels, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=cfg.patch_size)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([sd["cls_token"].expand(x.size(0), -1, -1), x], 1) + sd["pos_embed"]
    T = ids.size(1)
    h = sd["transformer.wte.weight"][ids] + sd["transformer.wpe.weight"][:T]
    for i in range(cfg.depth):
        e, d = f"blocks.{i}", f"transformer.h.{i}"
        y = ln(x, e + ".norm1", 1e-6)
        q, k, v = lin(y, e + ".attn.qkv").split(C, -1)
        x = x + lin(attend(q, k, v, False), e + ".attn.proj")
        x = x + lin(F.gelu(lin(ln(x, e + ".norm2", 1e-6), e + ".mlp.fc1")), e + ".mlp.fc2")
        q, k, v = lin(ln(h, d + ".ln_1", 1e-5), d + ".attn.c_attn").split(C, -1)
        h = h + lin(attend(q, k, v, True), d + ".attn.c_proj")
        y = ln(h, d + ".ln_2", 1e-5)
        att = attend(lin(y, d + ".cross_attn.q"), lin(x, d + ".cross_attn.k"), lin(x, d + ".cross_attn.v"), False)
        h = h + lin(att, d + ".cross_attn.c_proj")
        h = h + lin(F.gelu(lin(ln(h, d + ".ln_3", 1e-5), d + ".mlp.c_fc")), d + ".mlp.c_proj")
    return F.linear(ln(h, "transformer.ln_f", 1e-5), sd["lm_head.weight"])
