"""Diverse beam search (Vijayakumar et al. 2016, "Diverse Beam Search"): num_beams split into
num_beam_groups groups of num_beams / num_beam_groups beams.

At each step the groups choose in order. Group g's log-probabilities (after the configuration's
processors) are lowered by diversity_penalty x the number of times each token was chosen at this step
by groups 0..g-1 (the paper's Hamming diversity), then the group takes one beam-search step on them
(search.BeamSearch: its own candidates, finished set and stopping rule). The penalised
log-probabilities are what a group's scores add up. The result is every group's finished hypotheses,
best first.
"""

from __future__ import annotations

import torch

from captioner.config import DecodingConfig
from captioner.decoding.beam_tree import TreeRecorder
from captioner.decoding.search import BeamSearch, Continuations, Hypothesis, Search


class GroupBeamSearch(Search):
    """Diverse beam search for one image: one BeamSearch per group, run one after the other each step."""

    processes_logprobs = True

    def __init__(self, config: DecodingConfig, eos_token_id: int, tree: TreeRecorder | None = None):
        super().__init__(config, eos_token_id)
        group_config = config.with_(num_beams=config.num_beams // config.num_beam_groups)
        self.groups = [BeamSearch(group_config, eos_token_id, tree, g) for g in range(config.num_beam_groups)]

    @property
    def num_rows(self) -> int:
        return sum(g.num_rows for g in self.groups)

    def advance(self, step, processed, logprobs, first_row, hidden=None):
        counts = torch.zeros(processed.size(-1))
        going_on = Continuations([], [])
        at = 0
        for group in self.groups:
            n = group.num_rows
            if n == 0:
                continue
            scores = processed[at : at + n] - self.config.diversity_penalty * counts
            scores = scores.masked_fill(processed[at : at + n].isneginf(), float("-inf"))  # banned stays banned
            chosen = group.advance(step, scores, logprobs[at : at + n], first_row + at)
            counts += torch.bincount(torch.tensor(chosen.tokens, dtype=torch.long), minlength=counts.numel()).float()
            going_on.rows.extend(at + r for r in chosen.rows)
            going_on.tokens.extend(chosen.tokens)
            at += n
        self.done = all(g.done for g in self.groups)
        return going_on

    def force(self, step, token, processed, logprobs, first_row, hidden=None):
        going_on = Continuations([], [])
        at = 0
        for group in self.groups:
            n = group.num_rows
            if n:
                forced = group.force(step, token, processed[at : at + n], logprobs[at : at + n], first_row + at)
                going_on.rows.extend(at + r for r in forced.rows)
                going_on.tokens.extend(forced.tokens)
                at += n
        self.done = all(g.done for g in self.groups)
        return going_on

    def results(self) -> list[Hypothesis]:
        return sorted((h for g in self.groups for h in g.finished), key=lambda h: -h.score)
