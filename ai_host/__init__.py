"""ai_host: the help of a local code model in Neovim, without ever making the editor wait.

Public surface: Engine (asyncio, no Neovim), the error family. Imports are lazy so that the
remote-plugin shim, imported by every python3 host start, costs next to nothing.
"""

from pathlib import Path
from typing import Any

__version__ = (Path(__file__).with_name("VERSION")).read_text(encoding="ascii").strip()  # the one source
__all__ = ["Engine", "AiHostError", "BackendError", "ConfigError", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Engine":
        from .engine import Engine

        return Engine
    if name in ("AiHostError", "BackendError", "ConfigError"):
        from . import errors

        return getattr(errors, name)
    raise AttributeError(name)
