"""Tiny random diffusers pipelines built from configs in-process (no weights, no network), and small clips.

The component configs follow diffusers' own fast tests (tests/pipelines/flux/test_pipeline_flux_fill.py,
stable_video_diffusion/test_stable_video_diffusion.py, wan/test_wan_vace.py); the hub's tiny T5/CLIP
tokenizers they download are replaced by a word-level tokenizer built in code, and the tiny T5 by
one built from its config. Builders import torch/diffusers inside, so test modules skip cleanly
with ``pytest.importorskip``.
"""

from __future__ import annotations

import numpy as np
import pytest

from pvtt.compose import box_of_mask
from pvtt.demo import product_photo, render_template
from pvtt.types import Clip, Tracks

WORDS = ("the a an product video mug bottle box on table camera moves left right replace with red blue green "
         "glass ceramic bright colors static blurred").split()


def tiny_tokenizer(max_length: int = 77):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "</s>", "<s>"]
    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", eos_token="</s>",
                                   bos_token="<s>", model_max_length=max_length)


def tiny_t5(d_model: int = 32):
    import torch
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    config = T5Config(vocab_size=64, d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=2, decoder_start_token_id=0)
    return T5EncoderModel(config).eval()


def tiny_wan_vace():
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanVACEPipeline, WanVACETransformer3DModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    torch.manual_seed(0)
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=3, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32, vace_layers=[0, 2], vace_in_channels=96)
    return WanVACEPipeline(transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
                           text_encoder=tiny_t5(), tokenizer=tiny_tokenizer(16))


def tiny_svd():
    import torch
    from diffusers import (AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, StableVideoDiffusionPipeline,
                           UNetSpatioTemporalConditionModel)
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"), cross_attention_dim=32,
        num_attention_heads=8, projection_class_embeddings_input_dim=96, addition_time_embed_dim=32)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", interpolation_type="linear",
        num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002, steps_offset=1,
        timestep_spacing="leading", timestep_type="continuous", trained_betas=None, use_karras_sigmas=True)
    torch.manual_seed(0)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                                       down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"], latent_channels=4)
    torch.manual_seed(0)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4, image_size=224,
        intermediate_size=37, patch_size=32))  # SVD's pipeline always resizes the CLIP input to 224
    return StableVideoDiffusionPipeline(unet=unet, image_encoder=image_encoder, scheduler=scheduler, vae=vae,
                                        feature_extractor=CLIPImageProcessor(crop_size=32, size=32))


def tiny_flux_parts():
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=3, eos_token_id=2, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05,
        num_attention_heads=4, num_hidden_layers=2, pad_token_id=0, vocab_size=64, hidden_act="gelu",
        projection_dim=32))
    torch.manual_seed(0)
    vae = AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
                        latent_channels=2, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
                        shift_factor=0.0609, scaling_factor=1.5035)
    return dict(scheduler=FlowMatchEulerDiscreteScheduler(), text_encoder=text_encoder, text_encoder_2=tiny_t5(),
                tokenizer=tiny_tokenizer(77), tokenizer_2=tiny_tokenizer(77), vae=vae)


def tiny_flux_transformer(in_channels: int):
    import torch
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    return FluxTransformer2DModel(patch_size=1, in_channels=in_channels, out_channels=8, num_layers=1,
                                  num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
                                  joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8])


def tiny_flux_fill():
    from diffusers import FluxFillPipeline

    return FluxFillPipeline(transformer=tiny_flux_transformer(20), **tiny_flux_parts())


def tiny_flux_depth_inpaint():
    from diffusers import FluxControlInpaintPipeline

    return FluxControlInpaintPipeline(transformer=tiny_flux_transformer(16), **tiny_flux_parts())


def tiny_flux_redux(text_dim: int = 32, patches: int = 4):
    """``FluxPriorReduxPipeline`` without text encoders (as the hub's FLUX.1-Redux-dev): a tiny SigLIP (32 px input,
    ``patches`` x ``patches`` tokens) and a Redux projector into ``text_dim`` (tiny_flux_transformer's joint dim)."""
    import torch
    from diffusers import FluxPriorReduxPipeline
    from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(0)
    encoder = SiglipVisionModel(SiglipVisionConfig(hidden_size=24, intermediate_size=37, num_hidden_layers=2,
                                                   num_attention_heads=4, image_size=32, patch_size=32 // patches))
    torch.manual_seed(0)
    embedder = ReduxImageEncoder(redux_dim=24, txt_in_features=text_dim)
    return FluxPriorReduxPipeline(image_encoder=encoder.eval(), image_embedder=embedder,
                                  feature_extractor=SiglipImageProcessor(size={"height": 32, "width": 32}))


def save_tiny_flux_redux(path, **kwargs):
    """:func:`tiny_flux_redux` saved with ``save_pretrained``; its model_index.json lists only the three parts the
    hub's FLUX.1-Redux-dev has (no null text-encoder entries). Returns the folder."""
    import json
    from pathlib import Path

    path = Path(path)
    tiny_flux_redux(**kwargs).save_pretrained(path)
    index = json.loads((path / "model_index.json").read_text())
    (path / "model_index.json").write_text(json.dumps({k: v for k, v in index.items() if v != [None, None]}))
    return path


# --- a small product clip with known masks and tracks ------------------------------------------------
def product_mask(frames: np.ndarray) -> np.ndarray:
    """The rendered product: pixels far from the frame's median colour in the middle third (good enough here)."""
    t, h, w = frames.shape[:3]
    masks = np.zeros((t, h, w), bool)
    masks[:, h // 4: 3 * h // 4, w // 3: 2 * w // 3] = True
    return masks


def moving_tracks(masks: np.ndarray, count: int = 5) -> Tracks:
    box = box_of_mask(masks[0])
    rng = np.random.default_rng(0)
    p0 = np.stack([rng.uniform(box.x0, box.x1, count), rng.uniform(box.y0, box.y1, count)], -1).astype(np.float32)
    t = masks.shape[0]
    points = p0[None] + np.arange(t, dtype=np.float32)[:, None, None] * np.float32([1.0, 0.0])
    visible = np.ones((t, count), bool)
    visible[-1, 0] = False
    return Tracks(points, visible)
