"""The decoding strategies and the hard limits and ranges of the decoding settings (README "Limits and safety")."""

from __future__ import annotations

from typing import Literal

Strategy = Literal["greedy", "beam", "sample", "group_beam", "contrastive"]
STRATEGIES: tuple[str, ...] = ("greedy", "beam", "sample", "group_beam", "contrastive")
BEAM_STRATEGIES = ("beam", "group_beam")  # the strategies that keep num_beams hypotheses

# Hard limits that keep one request from taking the machine down.
MAX_NUM_BEAMS = 16
MAX_NEW_TOKENS = 128
MAX_RETURN_SEQUENCES = 16
MAX_TOP_K = 1_000_000
MAX_ALTERNATIVES = 100
MAX_SEED = 2**64 - 1  # torch's generators take 64-bit seeds
# Ranges of the float settings: beyond them a step's scores overflow or the setting means nothing new
# (a temperature of 0.001 is greedy; 1e-40 turns every score into infinity). A negative length penalty
# multiplies a beam's score by length ** -penalty: below -2, a long caption's score outgrows what beam
# search can compare (at -5, 39-token beams came back empty).
TEMPERATURE_RANGE = (0.01, 100.0)
REPETITION_PENALTY_RANGE = (0.01, 100.0)
LENGTH_PENALTY_RANGE = (-2.0, 3.0)
# Sampling cut-offs (transformers' warpers; each is off at its first value): min-p keeps tokens at least
# min_p x the best one's probability, typical-p the locally typical set of that mass, epsilon and eta
# drop tokens below an absolute (epsilon) or entropy-dependent (eta) probability. Near 1 epsilon and
# eta keep only the best token, which their warpers always keep.
MIN_P_RANGE = (0.0, 1.0)
TYPICAL_P_RANGE = (0.0, 1.0)  # above 0
CUTOFF_RANGE = (0.0, 0.99)  # epsilon_cutoff and eta_cutoff; transformers requires them below 1
# Diverse beam search subtracts diversity_penalty x (how often earlier groups chose a token at this step)
# from the token's log-probability; beyond 100 one repeat outweighs any log-probability float32 tells apart.
DIVERSITY_PENALTY_RANGE = (0.0, 100.0)
# Contrastive search: score = (1 - penalty_alpha) x probability - penalty_alpha x degeneration penalty,
# over the top_k most likely tokens; each candidate is one row of the next step, hence the bound on top_k.
MAX_CONTRASTIVE_TOP_K = MAX_NUM_BEAMS
