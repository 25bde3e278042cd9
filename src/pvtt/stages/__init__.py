"""Stage adapters, the workspace side of every stage, by the item they work on:

- per template (:mod:`.template`): ``normalize`` (with the ``shots`` record);
- per clip (:mod:`.clip`): ``locate``, ``segment``, ``track``, ``curate``, ``erase``, ``depth``, ``motion_lora``,
  ``points_registration``;
- per product (:mod:`.product`): ``product``, ``cutout``, ``video_cutout``;
- per pair (:mod:`.pair`): ``synthesize``.

The stages of one optional model stay together in their own module, whatever their item: :mod:`.embed` (DINOv2:
the ``embed`` clip stage and the cached product vector) and :mod:`.vlm` (the VLM: ``caption`` and ``points`` per
clip, ``instruct`` per pair), since stages sharing a model share one backend object, set up once per worker.
Stages read each other's outputs through :mod:`pvtt.artifacts`.
"""
