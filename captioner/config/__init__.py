"""Configuration: the settings of decoding and of the VisionGPT2 architecture, their one validation, the limits.

`from captioner.config import ...` gives all of it; each idea has its own module:

- `schema`: the typed schema (`Spec`, `ConfigError`, `read_fields`) and `checked` fields, which declare a
  dataclass field's rule beside its default;
- `limits`: the strategies and the hard limits and ranges of the decoding settings;
- `architecture`: `VisionGPT2Config`;
- `decoding`: `DecodingConfig`, its validation and its `cache_key`;
- `generation`: a model's own defaults from Hugging Face's generation_config.json.
"""

from captioner.config.architecture import VISIONGPT2_SCHEMA, VisionGPT2Config
from captioner.config.decoding import DECODING_SCHEMA, DecodingConfig
from captioner.config.generation import GENERATION_SCHEMA, HF_SAMPLING_TOP_K, decoding_from_generation_config
from captioner.config.limits import (
    BEAM_STRATEGIES,
    CUTOFF_RANGE,
    DIVERSITY_PENALTY_RANGE,
    LENGTH_PENALTY_RANGE,
    MAX_ALTERNATIVES,
    MAX_CONTRASTIVE_TOP_K,
    MAX_NEW_TOKENS,
    MAX_NUM_BEAMS,
    MAX_RETURN_SEQUENCES,
    MAX_SEED,
    MAX_TOP_K,
    MIN_P_RANGE,
    REPETITION_PENALTY_RANGE,
    STRATEGIES,
    TEMPERATURE_RANGE,
    TYPICAL_P_RANGE,
    Strategy,
)
from captioner.config.schema import ConfigError, Spec, checked, read_fields, schema_of

__all__ = [
    "BEAM_STRATEGIES",
    "CUTOFF_RANGE",
    "DECODING_SCHEMA",
    "DIVERSITY_PENALTY_RANGE",
    "GENERATION_SCHEMA",
    "HF_SAMPLING_TOP_K",
    "LENGTH_PENALTY_RANGE",
    "MAX_ALTERNATIVES",
    "MAX_CONTRASTIVE_TOP_K",
    "MAX_NEW_TOKENS",
    "MAX_NUM_BEAMS",
    "MAX_RETURN_SEQUENCES",
    "MAX_SEED",
    "MAX_TOP_K",
    "MIN_P_RANGE",
    "REPETITION_PENALTY_RANGE",
    "STRATEGIES",
    "TEMPERATURE_RANGE",
    "TYPICAL_P_RANGE",
    "VISIONGPT2_SCHEMA",
    "ConfigError",
    "DecodingConfig",
    "Spec",
    "Strategy",
    "VisionGPT2Config",
    "checked",
    "decoding_from_generation_config",
    "read_fields",
    "schema_of",
]
