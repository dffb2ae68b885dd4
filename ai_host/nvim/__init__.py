"""The bridge to Neovim: the only part of ai_host that imports pynvim."""
