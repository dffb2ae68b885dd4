"""ai_host's remote-plugin shim: registers two functions and hands everything to ai_host.nvim.

Named ai_host_rplugin (not ai_host) so it cannot shadow the package in the shared python3 host.
Importing it is cheap and makes no API call: the engine starts on the first notification.
"""

import os
import sys

import pynvim

try:  # a checkout used without `pip install`: find the package beside rplugin/
    import ai_host  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


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
        self._get().on_notify(args)

    @pynvim.function("AiHostRequest", sync=True)
    def request(self, args):
        return self._get().on_request(args)
