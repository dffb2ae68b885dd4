"""Host: receives the Lua side's notifications on pynvim's thread and hands them to the engine.

Handlers here run as pynvim greenlets and must return at once: they parse, hand off, return.
Results come back from the engine thread through `nvim.async_call`, the one door into the API,
and leave as notifications (`exec_lua(..., async_=True)`), so nothing here ever waits on Neovim.
"""

from __future__ import annotations

from typing import Any

from .. import memory, protocol
from ..engine import Engine
from ..errors import BadMessage
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
        """AiHostNotify(name, payload): a message of ai_host.protocol, parsed here, once."""
        if not args or not isinstance(args[0], str):
            logger.error("AiHostNotify called without an event name")
            return
        try:
            message = protocol.parse(args[0], args[1] if len(args) > 1 else None)
        except BadMessage as e:
            self.engine.refuse(e)
            return
        engine = self.engine
        match message:
            case protocol.Configure(options):
                engine.configure(options)
            case protocol.Cancel(job_id):
                engine.cancel(job_id)
            case protocol.CancelAll():
                engine.cancel_all()
            case protocol.SetModel(task, model):
                engine.set_model(task, model)
            case protocol.LspLoad(buf, pending):
                engine.report_lsp(buf, pending)
            case protocol.ForgetBuffer(buf):
                engine.forget_buffer(buf)
            case _:
                engine.submit(message)

    def on_request(self, args: list[Any]) -> Any:
        """AiHostRequest(what, ...): cheap synchronous getters only (status, memory)."""
        what = args[0] if args else ""
        if what == "status":
            return self.engine.status()
        if what == "memory":  # AiHostRequest('memory' [, snapshot path]): for tests and bench/
            return memory.report(str(args[1]) if len(args) > 1 and args[1] else "")
        if what == "ping":
            return "pong"
        if what == "protocol":  # the version of the messages this host reads (ai_host.protocol)
            return protocol.VERSION
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
