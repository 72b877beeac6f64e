"""The logits processors of a decoding configuration: transformers' own classes, in `generate`'s order.

`rules` (repetition penalty, no-repeat n-grams, minimum length) act on raw logits for greedy,
sampling and contrastive search and on log-probabilities for beam searches; `warpers` (temperature,
top-k, top-p, min-p, typical-p, epsilon, eta) only act when sampling. Two things are added around them so that every setting gives finite numbers:
- a row where the rules ban every token (say no-repeat n-grams together with a minimum length)
  falls back to the unprocessed scores for that step: there is no rule-abiding token to pick;
- the warpers see the scores shifted so that the best one is 0. They are all shift-invariant, and a
  tiny temperature then sends the others to -inf instead of overflowing every score to +-inf. (A
  temperature is taken within float32's normal numbers, the scores' type, so it is never 0 or inf.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from transformers import (
    EpsilonLogitsWarper,
    EtaLogitsWarper,
    LogitsProcessorList,
    MinPLogitsWarper,
    MinNewTokensLengthLogitsProcessor,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

from captioner.config import DecodingConfig

START_TOKENS = 1  # every row starts with the start token, which is not a generated token
FLOAT32 = torch.finfo(torch.float32)


class TopPWarper(TopPLogitsWarper):
    """transformers' top-p, with the sort it starts with done by numpy: the same tokens, bit for bit.

    On one 50k-token row, on this project's CPUs, the warper takes 6.1 ms with torch.sort and 1.3 ms with
    numpy's sort of the values: ~80 ms of a 16-token top-p caption, which takes ~520 ms in bf16 and ~800 ms
    in fp32 (docs/benchmark.md, top_p rows).
    transformers drops the ascending prefix whose cumulative probability stays <= 1 - p, which is every
    token below the first kept value, unless equal values straddle the cut: then which of them go depends
    on torch.sort's order, so transformers' own code runs.
    """

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if scores.dtype != torch.float32 or scores.dim() != 2:
            return super().__call__(input_ids, scores)
        sorted_scores = torch.from_numpy(np.sort(scores.numpy(), axis=-1))
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        cut = (cumulative[:, :-1] <= (1 - self.top_p)).sum(dim=-1, keepdim=True)  # length of the dropped prefix
        first_kept = sorted_scores.gather(1, cut)
        last_dropped = sorted_scores.gather(1, (cut - 1).clamp_min(0))
        if bool(((cut > 0) & (last_dropped == first_kept)).any()):
            return super().__call__(input_ids, scores)
        return scores.masked_fill(scores < first_kept, self.filter_value)


@dataclass
class Processors:
    """The processors of one configuration, built once."""

    rules: LogitsProcessorList
    warpers: LogitsProcessorList

    @classmethod
    def for_config(cls, config: DecodingConfig, eos_token_id: int) -> "Processors":
        rules, warpers = LogitsProcessorList(), LogitsProcessorList()
        if config.repetition_penalty != 1.0:
            rules.append(RepetitionPenaltyLogitsProcessor(float(config.repetition_penalty)))
        if config.no_repeat_ngram_size > 0:
            rules.append(NoRepeatNGramLogitsProcessor(int(config.no_repeat_ngram_size)))
        if config.min_new_tokens > 0:
            rules.append(MinNewTokensLengthLogitsProcessor(START_TOKENS, int(config.min_new_tokens), eos_token_id))
        if config.strategy == "sample":
            if config.temperature != 1.0:  # as a float32, the scores' type: never 0 nor inf
                temperature = min(max(float(config.temperature), FLOAT32.tiny), FLOAT32.max)
                warpers.append(TemperatureLogitsWarper(temperature))
            if config.top_k > 0:
                warpers.append(TopKLogitsWarper(int(config.top_k)))
            if config.top_p < 1.0:
                warpers.append(TopPWarper(float(config.top_p)))
            if config.min_p > 0.0:  # generate applies min_p whenever it is set; 0 keeps every token
                warpers.append(MinPLogitsWarper(float(config.min_p)))
            if config.typical_p < 1.0:
                warpers.append(TypicalLogitsWarper(float(config.typical_p)))
            if config.epsilon_cutoff > 0.0:
                warpers.append(EpsilonLogitsWarper(float(config.epsilon_cutoff)))
            if config.eta_cutoff > 0.0:
                warpers.append(EtaLogitsWarper(float(config.eta_cutoff)))
        return cls(rules, warpers)

    def __call__(self, ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Processed scores of rows `ids` (R, t), the start token included; `scores` (R, V) are left as they are."""
        processed = scores
        if self.rules:
            processed = _with_fallback(self.rules(ids, scores), scores)
        if self.warpers:
            processed = self.warpers(ids, processed - processed.max(dim=-1, keepdim=True).values)
        return processed


def _with_fallback(processed: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """`processed` with +inf made the largest float (a penalty below 1 can overflow a score) and any row
    where every token is banned replaced by its unprocessed `scores`."""
    processed = processed.nan_to_num(nan=-math.inf, posinf=FLOAT32.max, neginf=-math.inf)
    banned = processed.isneginf().all(dim=-1, keepdim=True)
    return torch.where(banned, scores, processed)
