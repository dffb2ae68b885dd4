{
  description = "ai_host: a Neovim plugin that streams help from a local code model (Ollama) without making the editor wait";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = nixpkgs.legacyPackages.${system};
        py = pkgs.python311;
        pythonEnv = py.withPackages (ps: with ps; [ pynvim aiohttp msgpack nvidia-ml-py lru-dict ]);
        aiHost = pkgs.vimUtils.buildVimPlugin {
          pname = "ai_host";
          version = "0.1.0";
          src = self;
          # The remote plugin runs in Neovim's python3 host; wire its dependencies there.
          passthru.python3Dependencies = ps: with ps; [ pynvim aiohttp msgpack nvidia-ml-py lru-dict ];
        };
      in {
        packages.default = aiHost;
        packages.ai-host = aiHost;
        devShells.default = pkgs.mkShell {
          packages = [
            pkgs.neovim
            (py.withPackages (ps: with ps; [ pynvim aiohttp msgpack nvidia-ml-py lru-dict pytest pytest-asyncio hypothesis numpy ]))
          ];
          shellHook = ''
            echo "ai_host dev shell: make setup && make test"
          '';
        };
      });
}
