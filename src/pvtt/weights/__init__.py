"""The model weights a configured run reads (:mod:`~pvtt.weights.required`), and whether they are on disk or
fetched from the hub (:mod:`~pvtt.weights.hub`): what ``pvtt models list`` and ``download`` show.

It sits above :mod:`pvtt.config` and the stage packages (it reads their settings and registries); nothing below
imports it, so :mod:`pvtt.models` stays the lower layer every model backend builds on.
"""
