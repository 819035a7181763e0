"""A tiny Stable-Diffusion-style text-to-image pipeline, built from config objects (no hub
download): a UNet2DConditionModel, an AutoencoderKL, a CLIPTextModel and a CLIPTokenizer
over a vocabulary this module writes, saved with ``save_pretrained``."""

from __future__ import annotations

import json
from pathlib import Path

import torch

WORDS = ("a", "photo", "of", "the", "stop", "sign", "yield", "road", "blurry", "red")
SIZE = 16  # pixels; the latent is 8x8 (the autoencoder halves once)


def write_vocabulary(directory: Path) -> tuple[Path, Path]:
    """vocab.json (whole words and single letters) and an empty merges.txt."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token in [f"{w}</w>" for w in WORDS] + [c for c in "abcdefghijklmnopqrstuvwxyz"]:
        vocab.setdefault(token, len(vocab))
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(f"{letter}</w>", len(vocab))
    vocab_path, merges_path = directory / "vocab.json", directory / "merges.txt"
    vocab_path.write_text(json.dumps(vocab))
    merges_path.write_text("#version: 0.2\n")
    return vocab_path, merges_path


def save_tiny_pipeline(directory: Path, *, safe_serialization: bool = True) -> Path:
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab_path, merges_path = write_vocabulary(directory.parent / "vocabulary")
    tokenizer = CLIPTokenizer(
        vocab_file=str(vocab_path), merges_file=str(merges_path), model_max_length=16
    )
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=SIZE // 2,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=SIZE,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(json.loads(vocab_path.read_text())),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=16,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=DDIMScheduler(clip_sample=False, steps_offset=1),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(directory, safe_serialization=safe_serialization)
    return directory
