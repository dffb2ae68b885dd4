"""The log file: sizes, timings and errors; never code or prompts (unless debug logging is on)."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("ai_host")
logger.addHandler(logging.NullHandler())
logger.propagate = False
_handler: logging.Handler | None = None


def configure(path: str, level: str) -> None:
    """Point the log at `path` (created if needed). Never raises: logging must not break the plugin."""
    global _handler
    logger.setLevel(getattr(logging, level.upper(), logging.INFO))
    if not path:
        return
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if _handler is not None:
        logger.removeHandler(_handler)
        _handler.close()
    _handler = handler
    logger.addHandler(handler)
