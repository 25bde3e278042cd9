"""Runners execute stages over items. Stages never know which runner calls them.

* :class:`~pvtt.runners.local.LocalRunner` — in-process, or a process pool with ``workers > 1``.
"""

from pvtt.runners.local import LocalRunner

__all__ = ["LocalRunner"]
