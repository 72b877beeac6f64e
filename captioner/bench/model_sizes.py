"""Parameter memory of each family at full size, in float32 and bfloat16, from transformers' configs.

    python -m captioner.bench.model_sizes

Each model is built on the meta device (no weights are allocated or downloaded) from the sizes of the
published checkpoint (transformers' default configs are the base models'; BLIP large is the base with
a ViT-L/16 vision model), and its parameters and buffers are counted (tied weights once). This is what the
model cache (captioner/models/cache.py) charges a loaded model; a process needs torch and the decoding
on top.
"""

from __future__ import annotations

import torch

VIT_L16 = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096}


def _models():
    from transformers import (
        BlipConfig,
        BlipForConditionalGeneration,
        GitConfig,
        GitForCausalLM,
        GPT2Config,
        ViTConfig,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
    )

    from captioner.config import VisionGPT2Config
    from captioner.models.visiongpt2 import VisionGPT2

    vit_gpt2 = VisionEncoderDecoderConfig.from_encoder_decoder_configs(
        ViTConfig(), GPT2Config(add_cross_attention=True, is_decoder=True)
    )
    blip_large = BlipConfig(vision_config={**VIT_L16, "image_size": 384, "patch_size": 16})
    return [
        ("VisionGPT2 (seed captioner.pt)", lambda: VisionGPT2(VisionGPT2Config())),
        ("ViT-GPT2 (nlpconnect/vit-gpt2-image-captioning)", lambda: VisionEncoderDecoderModel(vit_gpt2)),
        ("BLIP base (Salesforce/blip-image-captioning-base)", lambda: BlipForConditionalGeneration(BlipConfig())),
        ("BLIP large (Salesforce/blip-image-captioning-large)", lambda: BlipForConditionalGeneration(blip_large)),
        ("GIT base (microsoft/git-base-coco)", lambda: GitForCausalLM(GitConfig())),
    ]


def tensor_bytes(module: torch.nn.Module, element_bytes: int) -> tuple[int, int]:
    """(parameters, bytes in a dtype of `element_bytes` per element) of a module, tied tensors once."""
    params = sum(p.numel() for p in module.parameters())
    floats = sum(b.numel() for b in module.buffers() if b.is_floating_point())
    others = sum(b.numel() * b.element_size() for b in module.buffers() if not b.is_floating_point())
    return params, (params + floats) * element_bytes + others


def main() -> None:
    print("| model | parameters | float32 | bfloat16 |\n|---|---|---|---|")
    for name, build in _models():
        with torch.device("meta"):
            model = build()
        params, fp32 = tensor_bytes(model, 4)
        _, bf16 = tensor_bytes(model, 2)
        print(f"| {name} | {params / 1e6:.0f} M | {fp32 / 1e9:.2f} GB | {bf16 / 1e9:.2f} GB |")


if __name__ == "__main__":
    main()
