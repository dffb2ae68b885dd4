"""ai_host's remote-plugin shim: registers two functions and hands everything to ai_host.nvim.

Named ai_host_rplugin (not ai_host) so it cannot shadow the package in the shared python3 host.
Importing it is cheap and makes no API call: the engine starts on the first notification.
"""

import os
import sys

import pynvim

# The package beside rplugin/ always wins, so the Python side matches the Lua side of this checkout
# (a copy installed into the environment by the build step may be older).
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


@pynvim.plugin
class AiHostPlugin:
    def __init__(self, nvim):
        self._nvim = nvim
        self._host = None

    def _get(self):
        if self._host is None:
            from ai_host.nvim.host import Host

            self._host = Host(self._nvim)
        return self._host

    @pynvim.function("AiHostNotify", sync=False)
    def notify(self, args):
        try:
            self._get().on_notify(args)
        except Exception as e:  # e.g. a dependency missing from this python: one sentence, no traceback
            self._report(args, e)

    def _report(self, args, error):
        payload = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
        message = (
            f"ai_host: the Python side failed to start ({type(error).__name__}: {error}). "
            "Install its dependencies into the python Neovim uses (see :checkhealth ai_host)."
        )
        if payload.get("id"):
            self._nvim.exec_lua(
                "require('ai_host.host')._dispatch(...)", payload["id"], "error", {"message": message}, async_=True
            )
        elif not getattr(self, "_reported", False):
            self._reported = True
            self._nvim.exec_lua("vim.notify(..., vim.log.levels.ERROR)", message, async_=True)

    @pynvim.function("AiHostRequest", sync=True)
    def request(self, args):
        try:
            return self._get().on_request(args)
        except Exception as e:
            return {"error": f"ai_host: the Python side failed to start ({type(e).__name__}: {e})"}
