"""Tiny random models built from configs in-process (no weights, no network) and small synthetic clips.

Each builder imports torch/transformers inside, so the test modules can skip cleanly with
``pytest.importorskip`` when the ``models`` extra is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

from pvtt.demo import render_template
from pvtt.types import Clip


def tiny_clip(num_frames: int = 6, height: int = 48, width: int = 64, kind: int = 0, seed: int = 0) -> Clip:
    """A few frames of a rendered product showcase (product on a table, panning camera)."""
    frames = render_template(kind, seed, height=height, width=width, frames_per_shot=max(num_frames, 2))
    return Clip(f"tiny-{kind}-{seed}", np.ascontiguousarray(frames[:num_frames]), 20.0, template_id="tiny")


def tiny_dinov2_config(**kw):
    from transformers import Dinov2Config

    base = dict(image_size=28, patch_size=14, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64)
    return Dinov2Config(**{**base, **kw})


def tiny_dinov2():
    import torch
    from transformers import Dinov2Model

    torch.manual_seed(0)
    return Dinov2Model(tiny_dinov2_config()).eval()


def tiny_depth_anything():
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

    torch.manual_seed(0)
    backbone = tiny_dinov2_config(out_features=["stage1", "stage2"], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, patch_size=14,
                                 neck_hidden_sizes=[16, 32], reassemble_factors=[2, 1], fusion_hidden_size=16,
                                 head_hidden_size=8)
    return DepthAnythingForDepthEstimation(config).eval()


WORDS = ("the a product video mug bottle box on table camera moves left right replace with red blue green "
         "glass ceramic { } : , \" product_identity lighting safety artifacts 1 2 3 4 5 6 7 8 9 10").split()


def tiny_tokenizer(vocab_size: int = 0):
    """A word-level tokenizer with Qwen's chat tokens: enough to drive generate end to end. With ``vocab_size``
    filler words (``w123``) name every id up to it, so all a random-weight model generates decodes to text."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    words = specials + WORDS
    vocab = {w: i for i, w in enumerate(words + [f"w{i}" for i in range(len(words), vocab_size)])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                   eos_token="<|endoftext|>", additional_special_tokens=["<|im_start|>", "<|im_end|>"])


def tiny_qwen():
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
                         bos_token_id=2, eos_token_id=2, pad_token_id=0),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, out_hidden_size=32,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[1]),
        image_token_id=120, video_token_id=121, vision_start_token_id=122, vision_end_token_id=123)
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def _tiny_sam2_parts(s: int) -> dict:
    """The image encoder, prompt encoder and mask decoder shared by the tiny SAM2 image and video models."""
    backbone = dict(model_type="sam2_hiera_det_model", hidden_size=16, num_attention_heads=1, image_size=[s, s],
                    blocks_per_stage=[1, 2, 2, 1], embed_dim_per_stage=[16, 32, 64, 128],
                    num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 4, 4],
                    global_attention_blocks=[4], window_positional_embedding_background_size=[2, 2])
    vision = dict(model_type="sam2_vision_model", backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
                  backbone_feature_sizes=[[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]], fpn_hidden_size=128)
    return dict(vision_config=vision, prompt_encoder_config=dict(hidden_size=128, image_size=s, mask_input_channels=4),
                mask_decoder_config=dict(hidden_size=128, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32))


def tiny_sam2_video(size: int = 128):
    """A SAM2 video model at ``size`` px input (hidden 128 > memory dim 64, as the real configs have)."""
    import torch
    from transformers import Sam2VideoConfig, Sam2VideoModel

    s = size
    config = Sam2VideoConfig(
        **_tiny_sam2_parts(s),
        image_size=s, memory_attention_hidden_size=128, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64, memory_attention_rope_feat_sizes=[s // 16, s // 16],
        memory_encoder_hidden_size=128, memory_encoder_output_channels=64, mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=64, num_maskmem=3)
    torch.manual_seed(0)
    return Sam2VideoModel(config).eval()


def tiny_owlv2():
    import torch
    from transformers import Owlv2Config, Owlv2ForObjectDetection

    torch.manual_seed(0)
    config = Owlv2Config(
        text_config=dict(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=16),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=64, patch_size=16),
        projection_dim=32)
    return Owlv2ForObjectDetection(config).eval()


def tiny_grounding_dino():
    import torch
    from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection

    torch.manual_seed(0)
    config = GroundingDinoConfig(
        backbone_config=dict(model_type="swin", embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                             window_size=4, image_size=64, out_features=["stage2", "stage3", "stage4"]),
        text_config=dict(model_type="bert", vocab_size=128, hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=64, max_position_embeddings=64),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        encoder_attention_heads=2, decoder_attention_heads=2, num_queries=10, num_feature_levels=4,
        encoder_n_points=2, decoder_n_points=2, max_text_len=32)
    return GroundingDinoForObjectDetection(config).eval()


def tiny_sam2_image(size: int = 64):
    """A SAM2 image model (``Sam2Model``) at ``size`` px input; masks come out at ``size // 4``."""
    import torch
    from transformers import Sam2Config, Sam2Model

    config = Sam2Config(**_tiny_sam2_parts(size))
    torch.manual_seed(0)
    return Sam2Model(config).eval()