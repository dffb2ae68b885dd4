"""Host: receives the Lua side's notifications on pynvim's thread and hands them to the engine.

Handlers here run as pynvim greenlets and must return at once: they parse, hand off, return.
Results come back from the engine thread through `nvim.async_call`, the one door into the API,
and leave as notifications (`exec_lua(..., async_=True)`), so nothing here ever waits on Neovim.
"""

from __future__ import annotations

from typing import Any

from .. import memory
from ..engine import Engine
from ..log import logger

_DISPATCH = "require('ai_host.host')._dispatch(...)"


class Host:
    def __init__(self, nvim: Any):
        self.nvim = nvim
        memory.start_tracing()  # only with AI_HOST_TRACEMALLOC set: before the engine allocates
        self.engine = Engine(self._emit)
        self.engine.start()

    # -- from Lua (pynvim thread) ----------------------------------------------------------

    def on_notify(self, args: list[Any]) -> None:
        """AiHostNotify(event, payload): config, explain, complete, cancel, cancel_all, lsp, forget_buf,
        set_model."""
        if not args or not isinstance(args[0], str):
            logger.error("AiHostNotify called without an event name")
            return
        event = args[0]
        payload = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
        if event == "config":
            self.engine.configure(payload)
        elif event in ("explain", "complete", "refactor", "models"):
            self.engine.submit(event, payload)
        elif event == "cancel":
            self.engine.cancel(str(payload.get("id", "")))
        elif event == "cancel_all":
            self.engine.cancel_all()
        elif event == "set_model":
            self.engine.set_model(str(payload.get("task", "")), str(payload.get("model", "")))
        elif event == "lsp":
            self.engine.report_lsp(payload.get("buf"), int(payload.get("pending") or 0))
        elif event == "forget_buf":
            self.engine.forget_buffer(payload.get("buf"))
        else:
            logger.error("unknown event %r", event)

    def on_request(self, args: list[Any]) -> Any:
        """AiHostRequest(what, ...): cheap synchronous getters only (status, memory)."""
        what = args[0] if args else ""
        if what == "status":
            return self.engine.status()
        if what == "memory":  # AiHostRequest('memory' [, snapshot path]): for tests and bench/
            return memory.report(str(args[1]) if len(args) > 1 and args[1] else "")
        if what == "ping":
            return "pong"
        if what == "health":
            return self.engine.health()
        return None

    # -- to Lua (engine thread) ------------------------------------------------------------

    def _emit(self, job_id: str, event: str, data: dict[str, Any]) -> None:
        self.nvim.async_call(self._send, job_id, event, data)

    def _send(self, job_id: str, event: str, data: dict[str, Any]) -> None:
        try:
            self.nvim.exec_lua(_DISPATCH, job_id, event, data, async_=True)
        except Exception:  # the channel may be closing; never let this kill pynvim's loop
            logger.exception("could not notify Neovim")
