"""Admission gates: the language server and the GPU go first; the model waits its turn."""

from .gpu import FileProbe, GpuGate, GpuReading, GpuUnavailable, NvmlProbe, make_probe
from .lsp import LspGate

__all__ = ["FileProbe", "GpuGate", "GpuReading", "GpuUnavailable", "NvmlProbe", "make_probe", "LspGate"]
