"""Contrastive search (Su et al. 2022, "A Contrastive Framework for Neural Text Generation").

At each step the top_k most likely tokens v (under the configuration's processors, as a softmax) are
candidates, and the one chosen maximises
    (1 - penalty_alpha) x p(v | context) - penalty_alpha x max_j cos(h_v, h_j)
where h_v is the decoder's final hidden state for the context followed by v and h_j those of the
context's tokens (the start token included). Each candidate is one row of the next model step: that
step gives h_v, and the chosen row's logits are the next step's distribution, so a caption of n tokens
takes n + 1 steps of top_k rows. penalty_alpha 0 is greedy decoding.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from captioner.decoding.search import Continuations, Hypothesis, PathStep, Search


class Candidates(NamedTuple):
    """The top_k tokens of one distribution, waiting for their hidden states."""

    step: int
    row: int  # the batch row whose logits gave them
    tokens: list[int]
    probs: torch.Tensor  # (k,) processed probabilities
    raw_logprobs: list[float]
    logprobs: list[float]  # processed


class ContrastiveSearch(Search):
    """One caption: a context of hidden states, and the candidates of the last distribution."""

    def __init__(self, config, eos_token_id):
        super().__init__(config, eos_token_id)
        self.context: torch.Tensor | None = None  # (tokens so far, C)
        self.pending: Candidates | None = None

    @property
    def num_rows(self) -> int:
        return 0 if self.done else (1 if self.pending is None else len(self.pending.tokens))

    def advance(self, step, processed, logprobs, first_row, hidden=None):
        if hidden is None:
            raise ValueError("contrastive search needs the decoder's hidden states, which this model's step does not give")
        if self.pending is None:  # one row: its last token joins the context, its distribution gives candidates
            self._extend_context(hidden[0])
            return self._propose(step, processed, logprobs, first_row, 0)
        c = self.pending
        similarity = F.cosine_similarity(hidden[:, None, :], self.context[None, :, :], dim=-1)  # (k, context)
        alpha = self.config.penalty_alpha
        scores = (1 - alpha) * c.probs - alpha * similarity.max(dim=1).values
        best = int(scores.argmax())
        token = c.tokens[best]
        path = self.paths[0] + (PathStep(c.step, c.row, token, c.raw_logprobs[best], c.logprobs[best]),)
        self._extend_context(hidden[best])
        if token == self.eos_token_id or len(path) >= self.config.max_new_tokens:
            self.finished = [Hypothesis(self._score(path), path, token == self.eos_token_id)]
            self.done = True
            return Continuations([], [])
        self.paths = [path]
        return self._propose(step, processed, logprobs, first_row, best)

    def force(self, step, token, processed, logprobs, first_row, hidden=None):
        if hidden is not None:
            self._extend_context(hidden[0])
        return super().force(step, token, processed, logprobs, first_row)

    def _propose(self, step, processed, logprobs, first_row, row) -> Continuations:
        probs = processed[row].softmax(dim=-1)
        top_probs, top_ids = torch.topk(probs, min(self.config.top_k, probs.numel()))
        tokens = top_ids.tolist()
        self.pending = Candidates(
            step, first_row + row, tokens, top_probs, logprobs[row, top_ids].tolist(), top_probs.clamp_min(1e-45).log().tolist()
        )
        return Continuations([row] * len(tokens), tokens)

    def _extend_context(self, h: torch.Tensor) -> None:
        h = h.float()[None]
        self.context = h if self.context is None else torch.cat([self.context, h])
