"""LSP gate: the language server goes first. Lua reports each buffer's pending LSP requests."""

from __future__ import annotations

import asyncio
from typing import Any


class LspGate:
    def __init__(self, busy_above: int):
        self.busy_above = busy_above
        self._pending: dict[Any, int] = {}
        self._changed = asyncio.Event()
        self.waiting = 0  # jobs held at this gate now (:AIStatus, and tests that wait on it)

    def adopt(self, other: "LspGate") -> None:
        """Take over the load another gate knew of (the gates are rebuilt when settings change)."""
        self._pending.update(other._pending)

    def forget(self, buf: Any) -> None:
        """The buffer is gone: its load no longer counts."""
        if self._pending.pop(buf, None):
            self._changed.set()

    def report(self, buf: Any, pending: int) -> None:
        self._pending[buf] = max(0, int(pending))
        self._changed.set()

    def busy(self, buf: Any) -> bool:
        return self._pending.get(buf, 0) > self.busy_above

    async def wait_free(self, buf: Any, timeout_s: float) -> bool:
        """Wait until the buffer's language server is no longer busy; False if it still is after timeout_s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self.waiting += 1
        try:
            while self.busy(buf):
                left = deadline - loop.time()
                if left <= 0:
                    return False
                self._changed.clear()
                try:
                    async with asyncio.timeout(left):
                        await self._changed.wait()
                except TimeoutError:
                    return not self.busy(buf)
            return True
        finally:
            self.waiting -= 1

    def state(self) -> dict[str, Any]:
        return {
            "busy_above": self.busy_above,
            "waiting": self.waiting,
            "pending": {str(k): v for k, v in self._pending.items() if v},
        }
