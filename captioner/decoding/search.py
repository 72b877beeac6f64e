"""The searches: greedy, sampling and beam search over the rows of one configuration on one image
(diverse beam search: diverse.py; contrastive search: contrastive.py).

A search sees its rows' next-token logits each step, processed by its configuration's processors (the
engine runs those once per configuration for the rows of every image), and says which rows continue
with which tokens; the engine keeps the model's cache in step. Beam search is transformers' (batch of one): 2 x num_beams
candidates a step, a finished set of num_beams scored sum of log-probabilities / length ** length_penalty,
the same early-stopping rules. A forced prefix (`force`) is taken token by token before a search
chooses anything. Where transformers marks candidates out by adding -1e9 to their scores,
masks do it here, so that scores of any size (a length penalty of -8 makes them ~1e14) keep their order.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from captioner.config import DecodingConfig
from captioner.decoding.beam_tree import TreeRecorder

# The running score of beams 1.. before the first step (transformers' value): all beams start as copies
# of beam 0, so that the first step's candidates come from beam 0 alone.
UNREACHED_BEAM = -1e9
# length ** length_penalty is kept within 1e+-130, so that any finite penalty gives finite scores.
MAX_LOG_LENGTH_FACTOR = 300.0
# Beam scores saturate at float32's lowest number instead of overflowing to -inf (a repetition penalty of
# 1e38 can get there); -inf stays for banned tokens only, so that every running beam can still finish.
LOWEST_SCORE = torch.finfo(torch.float32).min


class PathStep(NamedTuple):
    """One token of a hypothesis, and where to find the records of the step that produced it."""

    step: int  # decoding step
    row: int  # the row (across the whole batch) whose logits gave the token
    token: int
    raw_logprob: float  # under the model's raw distribution
    logprob: float  # under the distribution decoding used (after the processors)
    forced: bool = False  # a token of the forced prefix, not chosen by the search


Path = tuple[PathStep, ...]


class Hypothesis(NamedTuple):
    score: float
    path: Path
    ended: bool  # with the end token (not cut by max_new_tokens)
    node: int = -1  # beam searches: its last token's node in the beam tree


class Continuations(NamedTuple):
    """Which of a search's rows go on (indices among its rows), and with which tokens."""

    rows: list[int]
    tokens: list[int]


def length_factor(length: int, penalty: float) -> float:
    """length ** penalty, bounded (see MAX_LOG_LENGTH_FACTOR)."""
    return math.exp(max(-MAX_LOG_LENGTH_FACTOR, min(MAX_LOG_LENGTH_FACTOR, penalty * math.log(length))))


class Search:
    """A decoding configuration's state on one image: its live rows, and the hypotheses it has finished."""

    def __init__(self, config: DecodingConfig, eos_token_id: int):
        self.config = config
        self.eos_token_id = eos_token_id
        self.paths: list[Path] = [()]
        self.finished: list[Hypothesis] = []
        self.done = False

    @property
    def num_rows(self) -> int:
        return 0 if self.done else len(self.paths)

    # The processors act on raw logits (greedy, sampling) or on log-probabilities (beam search).
    processes_logprobs = False

    def advance(
        self, step: int, processed: torch.Tensor, logprobs: torch.Tensor, first_row: int, hidden: torch.Tensor | None = None
    ) -> Continuations:
        """Consume this step's scores after the configuration's processors and the raw log-probabilities
        (this search's rows; `first_row` is the first one's row in the batch; `hidden`: the rows' final
        hidden states, which only contrastive search reads)."""
        raise NotImplementedError

    def force(
        self,
        step: int,
        token: int,
        processed: torch.Tensor,
        logprobs: torch.Tensor,
        first_row: int,
        hidden: torch.Tensor | None = None,
    ) -> Continuations:
        """Every row takes `token` (a prefix token) whatever its scores say: the rows go on unless the
        caption reached max_new_tokens."""
        proc_lp = processed.log_softmax(dim=-1) if not self.processes_logprobs else processed
        paths = [
            p + (PathStep(step, first_row + r, token, float(logprobs[r, token]), _finite(proc_lp[r, token]), True),)
            for r, p in enumerate(self.paths)
        ]
        if len(paths[0]) >= self.config.max_new_tokens:
            self.finished = [Hypothesis(self._score(p), p, False) for p in paths]
            self.done = True
            return Continuations([], [])
        self.paths = paths
        return Continuations(list(range(len(paths))), [token] * len(paths))

    def _score(self, path: Path) -> float:
        return sum(s.logprob for s in path) / length_factor(len(path), self.config.length_penalty)

    def results(self) -> list[Hypothesis]:
        """Finished hypotheses, best first."""
        return sorted(self.finished, key=lambda h: -h.score)


class RowSearch(Search):
    """Independent rows: greedy (one row) or sampling (num_return_sequences rows, one seeded generator)."""

    def __init__(self, config: DecodingConfig, eos_token_id: int):
        super().__init__(config, eos_token_id)
        sampling = config.strategy == "sample"
        self.paths = [()] * (config.num_return_sequences if sampling else 1)
        self.generator = torch.Generator().manual_seed(config.seed or 0) if sampling else None

    def advance(self, step, processed, logprobs, first_row, hidden=None):
        scores, processed = processed, processed.log_softmax(dim=-1)
        if self.generator is None:
            tokens = scores.argmax(dim=-1)
        else:
            tokens = torch.multinomial(processed.exp(), 1, generator=self.generator).squeeze(1)
        raw_lp = logprobs.gather(1, tokens[:, None]).squeeze(1).tolist()
        proc_lp = processed.gather(1, tokens[:, None]).squeeze(1).tolist()
        going_on = Continuations([], [])
        live = []
        for r, token in enumerate(tokens.tolist()):
            path = self.paths[r] + (PathStep(step, first_row + r, token, raw_lp[r], proc_lp[r]),)
            ended = token == self.eos_token_id
            if ended or len(path) >= self.config.max_new_tokens:
                self.finished.append(Hypothesis(self._score(path), path, ended))
            else:
                going_on.rows.append(r)
                going_on.tokens.append(token)
                live.append(path)
        self.paths = live
        self.done = not live
        return going_on

    def results(self):
        return list(self.finished)  # samples in the order they finished; there is only one greedy row


class BeamSearch(Search):
    """transformers' beam search for one image: 2 x num_beams candidates a step, a finished set of num_beams.

    With a `tree`, every candidate of every step is recorded: kept (running on), finished (entered
    the finished set) or pruned; `group` tells diverse beam search's groups apart there."""

    def __init__(self, config: DecodingConfig, eos_token_id: int, tree: TreeRecorder | None = None, group: int = 0):
        super().__init__(config, eos_token_id)
        nb = config.num_beams
        self.paths = [()] * nb
        self.running_scores = torch.full((nb,), UNREACHED_BEAM)
        self.running_scores[0] = 0.0
        # The finished set: num_beams slots, each a hypothesis once is_finished (scores in float64).
        self.finished_scores = torch.full((nb,), -math.inf, dtype=torch.float64)
        self.finished_slots: list[Hypothesis | None] = [None] * nb
        self.is_finished = torch.zeros(nb, dtype=torch.bool)
        self.improvement_possible = True
        self.tree, self.group = tree, group
        self.nodes = [0] * nb  # each running beam's last node in the tree (0: the start token)

    processes_logprobs = True

    def advance(self, step, processed, logprobs, first_row, hidden=None):
        vocab = processed.size(-1)
        accumulated = (
            (processed + self.running_scores[:, None]).clamp_min(LOWEST_SCORE).masked_fill(processed.isneginf(), -math.inf)
        )
        top_scores, top_index = torch.topk(accumulated.view(-1), 2 * self.config.num_beams)
        source, tokens = top_index // vocab, top_index % vocab
        raw_lp, proc_lp = logprobs[source, tokens].tolist(), processed[source, tokens].tolist()
        source, tokens = source.tolist(), tokens.tolist()
        length = len(self.paths[0]) + 1
        candidates = [
            self.paths[s] + (PathStep(step, first_row + s, t, raw_lp[i], proc_lp[i]),)
            for i, (s, t) in enumerate(zip(source, tokens))
        ]
        ended = torch.tensor([t == self.eos_token_id for t in tokens])
        hits = ended | (length >= self.config.max_new_tokens)
        nodes = self._record(step, source, tokens, top_scores, length)

        # The best num_beams candidates that did not stop keep running.
        running = top_scores.masked_fill(hits, -math.inf)
        keep = torch.topk(running, self.config.num_beams).indices
        self.running_scores = running[keep].clamp_min(LOWEST_SCORE)
        keep = keep.tolist()
        self.paths = [candidates[i] for i in keep]
        self.nodes = [nodes[i] for i in keep]

        entered = self._update_finished(top_scores, hits, ended, candidates, length, nodes)
        if self.tree is not None:
            for i, node in enumerate(nodes):
                status = "finished" if i in entered else "kept" if i in keep and not bool(hits[i]) else "pruned"
                self.tree.set_status(node, status)
        self._update_done(length, hits)
        if self.done:
            return Continuations([], [])
        return Continuations([source[i] for i in keep], [tokens[i] for i in keep])

    def force(self, step, token, processed, logprobs, first_row, hidden=None):
        self.running_scores[0] = max(float(self.running_scores[0]) + _finite(processed[0, token]), LOWEST_SCORE)
        if self.tree is not None:
            node = self.tree.add(
                self.nodes[0], step, token, float(self.running_scores[0]), float(self.running_scores[0]), self.group
            )
            self.tree.set_status(node, "forced")
            self.nodes = [node] * len(self.nodes)
        going_on = super().force(step, token, processed, logprobs, first_row)
        self.finished = [h._replace(node=self.nodes[0]) for h in self.finished]
        return going_on

    def _record(self, step, source, tokens, top_scores, length) -> list[int]:
        """Each candidate's node in the tree (all -1 without a tree)."""
        if self.tree is None:
            return [-1] * len(tokens)
        factor = length_factor(length, self.config.length_penalty)
        scores = top_scores.clamp_min(LOWEST_SCORE).tolist()
        return [self.tree.add(self.nodes[s], step, t, x, x / factor, self.group) for s, t, x in zip(source, tokens, scores)]

    def _update_finished(self, top_scores, hits, ended, candidates, length, nodes) -> set[int]:
        """Stopped candidates among the top num_beams enter the finished set if they beat its worst:
        the candidates that entered it."""
        nb = self.config.num_beams
        can_enter = hits & (torch.arange(2 * nb) < nb) & top_scores.isfinite()
        if not self.improvement_possible or (bool(self.is_finished.all()) and self.config.early_stopping is True):
            can_enter[:] = False
        scores = top_scores.double() / length_factor(length, self.config.length_penalty)
        merged_scores = torch.cat([self.finished_scores, scores.masked_fill(~can_enter, -math.inf)])
        merged_finished = torch.cat([self.is_finished, can_enter])
        merged = self.finished_slots + [Hypothesis(0.0, c, bool(e), n) for c, e, n in zip(candidates, ended.tolist(), nodes)]
        best = torch.topk(merged_scores, nb).indices
        self.finished_scores, self.is_finished = merged_scores[best], merged_finished[best]
        self.finished_slots = [merged[i] for i in best.tolist()]
        self.finished = [
            h._replace(score=s)
            for h, s, f in zip(self.finished_slots, self.finished_scores.tolist(), self.is_finished.tolist())
            if f
        ]
        return {i - nb for i, f in zip(best.tolist(), self.is_finished.tolist()) if f and i >= nb}

    def _update_done(self, length, hits):
        """Done when no running beam can beat the worst finished one, when every slot is finished and
        early_stopping is True, or when every candidate stopped."""
        cfg = self.config
        best_length = cfg.max_new_tokens if cfg.early_stopping == "never" and cfg.length_penalty > 0 else length
        best_possible = self.running_scores[0].double() / length_factor(best_length, cfg.length_penalty)
        all_finished = bool(self.is_finished.all())
        if all_finished and not bool(best_possible > self.finished_scores.min()):
            self.improvement_possible = False
        early_stop = all_finished and cfg.early_stopping is True
        self.done = not self.improvement_possible or early_stop or bool(hits.all())


def _finite(logprob: torch.Tensor | float) -> float:
    """A forced token's log-probability, finite even where a rule banned the token (-inf)."""
    return max(float(logprob), float(LOWEST_SCORE))
