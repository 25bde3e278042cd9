"""insert flux-fill sees B's photo: the in-context (two-panel) canvas and FLUX.1 Redux, on tiny random pipelines.

Properties that hold with any weights: the canvas geometry (multiples of 16, the long-side cap, the
target panel cropped back at the frame's size), the mask is 0 on B's panel, B's pixels reach the
pipeline call, Redux's embeddings replace the prompt string, the backend's call equals the library
call, pixels outside the repaint region stay the source frame's.
"""

from __future__ import annotations

import numpy as np
import pytest

from pvtt.insert import FluxFillSettings
from pvtt.insert.reference import (Diptych, content_box, crop_target, diptych_canvas, diptych_layout, product_of,
                                   reference_panel)
from pvtt.instruction import TEMPLATES, make_instruction

# --- geometry and prompt text (no torch) ------------------------------------------------------------


@pytest.mark.parametrize("frame", [(32, 32), (960, 720), (720, 1280), (1080, 1920), (1920, 1080), (20, 36)])
@pytest.mark.parametrize("aspect", [0.2, 0.75, 1.0, 3.0])
@pytest.mark.parametrize("max_side", [1024, 1536])
def test_diptych_layout_keeps_the_frame_aspect_under_the_cap(frame, aspect, max_side):
    height, width = frame
    d = diptych_layout(height, width, aspect, 1024 * 1024, max_side)
    assert all(v % 16 == 0 and v >= 16 for v in (d.height, d.ref_width, d.target_width))
    assert max(d.height, d.width) <= max_side and d.ref_width <= d.target_width
    # the target panel has the frame's aspect up to the rounding of each side to 16 pixels
    tolerance = (width / height) * 16 * (1 / d.height + 1 / d.target_width)
    assert abs(d.target_width / d.height - width / height) <= tolerance
    if aspect * d.height <= d.target_width:  # B fits at the panel's height: the panel is as wide as B, rounded down
        assert d.height * aspect - 16 < d.ref_width <= max(16, d.height * aspect)


def test_portrait_frame_keeps_its_size_beside_b():
    d = diptych_layout(960, 720, 0.75, 720 * 960, 1536)  # a 720x960 portrait frame at its own area
    assert (d.height, d.target_width) == (960, 720) and d.ref_width == 720 and d.width == 1440
    d = diptych_layout(960, 720, 0.75, 720 * 960, 1024)  # capped: both panels shrink together
    assert d.width <= 1024 and d.height <= 1024 and abs(d.target_width / d.height - 0.75) < 0.03


def rgba_box(height, width, color=(200, 30, 30), pad=5):
    rgba = np.zeros((height + 2 * pad, width + 2 * pad, 4), np.uint8)
    rgba[pad:pad + height, pad:pad + width] = (*color, 255)
    return rgba


def test_reference_panel_shows_b_centred_on_the_background():
    product = rgba_box(40, 20)
    assert content_box(product) == (slice(5, 45), slice(5, 25))
    panel, alpha = reference_panel(product, 64, 48, background=128)
    assert panel.shape == (64, 48, 3) and alpha.shape == (64, 48)
    solid = alpha > 0.999
    rows, cols = np.nonzero(solid)
    assert (panel[solid] == (200, 30, 30)).all() and (panel[alpha == 0] == 128).all()
    assert rows.max() - rows.min() + 1 >= int(64 * 0.9) - 2  # B's height fills the panel (5 % margins)
    assert abs((rows.min() + rows.max()) / 2 - 31.5) <= 1 and abs((cols.min() + cols.max()) / 2 - 23.5) <= 1


def test_canvas_masks_only_the_target_and_crops_back_to_the_frame():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 48, 3), np.uint8)
    region = np.zeros((32, 48), bool)
    region[8:24, 20:30] = True
    layout = Diptych(height=32, ref_width=16, target_width=48)
    canvas, mask, ref_alpha = diptych_canvas(layout, rgba_box(30, 14), image, region)
    assert canvas.shape == (32, 64, 3) and mask.shape == (32, 64) and ref_alpha.shape == (32, 16)
    assert (mask[:, :16] == 0).all() and ((mask[:, 16:] > 0) == region).all()
    assert (canvas[:, 16:] == image).all() and ref_alpha.max() == 1.0
    assert (crop_target(layout, canvas, 32, 48) == image).all()
    assert crop_target(layout, canvas, 60, 90).shape == (60, 90, 3)  # back to any frame size


@pytest.mark.parametrize("template", TEMPLATES)
def test_product_name_is_read_back_from_every_instruction_template(template):
    assert product_of(template.format(source="gold bracelet", target="pearl necklace")) == "pearl necklace"


def test_product_name_of_a_made_instruction():
    assert all(product_of(make_instruction("mug", "Red Bottle.", seed)) == "red Bottle" for seed in range(8))


def test_product_name_falls_back_for_free_text():
    assert product_of("Put a different cup on the table.") == "product"
    assert product_of("") == "product"


def test_prompts_say_what_the_model_sees():
    from pvtt.insert.flux_fill import FluxFillInserter

    instruction = make_instruction("mug", "red bottle", 0)
    assert "reference image" in instruction
    plain = FluxFillInserter(reference="none").prompt_of(instruction)
    assert "reference" not in plain and "red bottle" in plain and "panel" not in plain
    redux = FluxFillInserter(reference="redux").prompt_of(instruction, description="Glass Teapot.")
    assert "Glass Teapot" in redux and "reference" not in redux
    diptych = FluxFillInserter(reference="in-context").prompt_of(instruction)
    assert "two-panel" in diptych and "Left" in diptych and "red bottle" in diptych


def test_reference_setting_is_checked_and_in_context_by_default():
    assert FluxFillSettings().reference == "in-context"
    with pytest.raises(ValueError, match="reference"):
        FluxFillSettings(reference="ip-adapter")


# --- tiny pipelines ---------------------------------------------------------------------------------
torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tiny_pipelines import (product_mask, save_tiny_flux_redux, tiny_flux_depth_inpaint,  # noqa: E402
                            tiny_flux_fill)

from pvtt.compose import box_of_mask  # noqa: E402
from pvtt.insert.flux_fill import REDUX_SIDE, FluxFillInserter  # noqa: E402
from pvtt.models import ModelNotAvailable  # noqa: E402

SMALL = dict(device="cpu", steps=2, max_area=32 * 32, max_side=64, mask_dilate=2, feather=0, max_sequence_length=16)


class Spy:
    """Stands in for a pipeline: records each call's keyword arguments, then runs the real one."""

    def __init__(self, pipe):
        self.pipe, self.calls = pipe, []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self.pipe(**kwargs)


@pytest.fixture(scope="module")
def fill():
    return tiny_flux_fill()


@pytest.fixture
def b_photo():
    from pvtt.demo import draw_product

    return draw_product(1, 24, 0)  # RGBA, a narrow bottle


@pytest.fixture(scope="module")
def redux_dir(tmp_path_factory):
    return save_tiny_flux_redux(tmp_path_factory.mktemp("redux") / "tiny-redux")


def first_frame(small_clip):
    frame = small_clip.frames[0]
    mask_a = product_mask(small_clip.frames)[0]
    return frame, mask_a, box_of_mask(mask_a)


def spied(inserter, pipe, **setup):
    inserter.setup(model=pipe, **setup)
    spy = Spy(inserter.model)
    inserter.model = spy
    return spy


def test_in_context_call_shows_b_left_of_the_frame(fill, small_clip, b_photo):
    inserter = FluxFillInserter(reference="in-context", **SMALL)
    spy = spied(inserter, fill)
    frame, mask_a, box_a = first_frame(small_clip)
    out = inserter.insert(frame, frame, mask_a, box_a, b_photo, instruction=make_instruction("mug", "vase", 0))
    (call,) = spy.calls
    image, mask = np.asarray(call["image"]), np.asarray(call["mask_image"])
    layout = diptych_layout(32, 32, _aspect(b_photo), 32 * 32, 64)
    assert image.shape == (layout.height, layout.width, 3) == (call["height"], call["width"], 3)
    assert layout.ref_width > 0 and call["width"] % 16 == 0 and call["height"] % 16 == 0
    # B's photo is the left panel; the mask spares it and covers the (resized) region on the right
    assert (image[:, :layout.ref_width] == reference_panel(b_photo, layout.height, layout.ref_width)[0]).all()
    assert (mask[:, :layout.ref_width] == 0).all() and (mask[:, layout.ref_width:] > 0).any()
    assert call["prompt"] == inserter.prompt_of(make_instruction("mug", "vase", 0)) and "vase" in call["prompt"]
    assert call["strength"] == inserter.settings.in_context_strength
    # the frame comes back at its size; outside the repaint region it is the source frame
    region = inserter.last_region
    assert out.frame.shape == frame.shape and out.info["reference"] == "in-context"
    assert out.info["canvas"] == [layout.height, layout.width]
    assert (out.frame[~region] == frame[~region]).all() and (out.frame[region] != frame[region]).any()


def test_in_context_refine_equals_the_library_call_on_the_canvas(fill, small_clip, b_photo):
    inserter = FluxFillInserter(reference="in-context", **SMALL)
    inserter.setup(model=fill)
    frame, mask_a, _ = first_frame(small_clip)
    mine = inserter.refine(frame, mask_a, "a red bottle on the table", product=b_photo)
    layout = diptych_layout(32, 32, _aspect(b_photo), 32 * 32, 64)
    canvas, mask, _ = diptych_canvas(layout, b_photo, frame, mask_a)
    from PIL import Image

    out = fill(prompt="a red bottle on the table", image=Image.fromarray(canvas), mask_image=Image.fromarray(mask),
               height=layout.height, width=layout.width, strength=inserter.settings.in_context_strength,
               num_inference_steps=2, guidance_scale=30.0, max_sequence_length=16,
               generator=torch.Generator("cpu").manual_seed(0), output_type="np").images[0]
    library = crop_target(layout, np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8), 32, 32)
    assert mine.shape == frame.shape and (mine == library).all()


def _aspect(product):
    rows, cols = content_box(product)
    return (cols.stop - cols.start) / (rows.stop - rows.start)


def test_no_reference_keeps_the_single_frame_call(fill, small_clip, b_photo):
    inserter = FluxFillInserter(reference="none", **SMALL)
    spy = spied(inserter, fill)
    frame, mask_a, box_a = first_frame(small_clip)
    out = inserter.insert(frame, frame, mask_a, box_a, b_photo, instruction=make_instruction("mug", "vase", 1))
    (call,) = spy.calls
    assert np.asarray(call["image"]).shape == (32, 32, 3) and call["strength"] == inserter.settings.strength
    assert "reference" not in call["prompt"] and "vase" in call["prompt"] and inserter.redux is None
    assert "reference" not in out.info["prompt"]


def test_redux_is_loaded_through_the_loader_and_replaces_the_prompt(fill, redux_dir, small_clip, b_photo):
    inserter = FluxFillInserter(reference="redux", redux_model=str(redux_dir), **SMALL)
    spy = spied(inserter, fill)
    redux = inserter.redux
    assert redux.text_encoder is fill.text_encoder and redux.text_encoder_2 is fill.text_encoder_2  # shared
    frame, mask_a, box_a = first_frame(small_clip)
    out = inserter.insert(frame, frame, mask_a, box_a, b_photo, instruction=make_instruction("mug", "vase", 2))
    (call,) = spy.calls
    assert call.get("prompt") is None and np.asarray(call["image"]).shape == (32, 32, 3)
    embeds, pooled = call["prompt_embeds"], call["pooled_prompt_embeds"]
    # T5's 512 prompt tokens (Redux pads to 512) then SigLIP's 4x4 image tokens, in the transformer's text width
    assert tuple(embeds.shape) == (1, 512 + 16, fill.transformer.config.joint_attention_dim)
    assert tuple(pooled.shape) == (1, fill.transformer.config.pooled_projection_dim)
    # the same embeddings as the library's Redux call on B's photo and the prompt
    from PIL import Image

    photo = reference_panel(b_photo, REDUX_SIDE, REDUX_SIDE)[0]
    library = redux(image=Image.fromarray(photo), prompt=out.info["prompt"])
    assert torch.equal(embeds, library.prompt_embeds) and torch.equal(pooled, library.pooled_prompt_embeds)
    # B's image tokens are there: another photo gives other embeddings past the prompt's
    other = inserter.redux_embeds(np.full_like(b_photo, 255), out.info["prompt"])["prompt_embeds"]
    assert torch.equal(other[:, :512], embeds[:, :512]) and not torch.equal(other[:, 512:], embeds[:, 512:])
    assert (out.frame[~inserter.last_region] == frame[~inserter.last_region]).all()


def test_in_context_and_redux_together(redux_dir, small_clip, b_photo, tmp_path):
    tiny_flux_fill().save_pretrained(tmp_path / "fill")
    inserter = FluxFillInserter(reference="in-context+redux", model=str(tmp_path / "fill"),
                                redux_model=str(redux_dir), **SMALL)
    inserter.setup()  # both pipelines through the real loader
    spy = Spy(inserter.model)
    inserter.model = spy
    frame, mask_a, box_a = first_frame(small_clip)
    out = inserter.insert(frame, frame, mask_a, box_a, b_photo, description="ceramic mug")
    (call,) = spy.calls
    layout = diptych_layout(32, 32, _aspect(b_photo), 32 * 32, 64)
    image = np.asarray(call["image"])
    assert image.shape[:2] == (layout.height, layout.width) and call.get("prompt") is None
    assert (image[:, :layout.ref_width] == reference_panel(b_photo, layout.height, layout.ref_width)[0]).all()
    assert call["prompt_embeds"].shape[1] == 512 + 16 and "two-panel" in out.info["prompt"]
    assert "ceramic mug" in out.info["prompt"] and out.frame.shape == frame.shape


def test_in_context_with_depth_control_gets_a_two_panel_control(small_clip, b_photo):
    inserter = FluxFillInserter(reference="in-context", control="depth", **SMALL)
    spy = spied(inserter, tiny_flux_depth_inpaint())
    frame, mask_a, box_a = first_frame(small_clip)
    depth = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    out = inserter.insert(frame, frame, mask_a, box_a, b_photo, depth=depth)
    (call,) = spy.calls
    control, image = np.asarray(call["control_image"]), np.asarray(call["image"])
    layout = diptych_layout(32, 32, _aspect(b_photo), 32 * 32, 64)
    assert control.shape == image.shape == (layout.height, layout.width, 3)
    _, alpha = reference_panel(b_photo, layout.height, layout.ref_width)
    left = control[:, :layout.ref_width, 0]
    assert (left[alpha == 0] == 0).all() and (left[alpha > 0.999] > 0).all()  # B near, its backdrop far
    assert out.frame.shape == frame.shape


def test_missing_redux_weights_are_a_clear_error(fill, tmp_path):
    inserter = FluxFillInserter(reference="redux", redux_model=str(tmp_path / "nowhere"), **SMALL)
    with pytest.raises(ModelNotAvailable, match="redux_model"):
        inserter.setup(model=fill)
    (tmp_path / "empty").mkdir()
    inserter = FluxFillInserter(reference="redux", redux_model=str(tmp_path / "empty"), **SMALL)
    with pytest.raises(ModelNotAvailable, match="model_index.json"):
        inserter.setup(model=fill)
    FluxFillInserter(reference="in-context", redux_model=str(tmp_path / "nowhere"), **SMALL).setup(model=fill)


def test_reference_needs_b_photo(fill, small_clip):
    inserter = FluxFillInserter(reference="in-context", **SMALL)
    inserter.setup(model=fill)
    frame, mask_a, _ = first_frame(small_clip)
    with pytest.raises(ValueError, match="product"):
        inserter.refine(frame, mask_a, "a vase")
