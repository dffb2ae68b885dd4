{
  description = "ai_host: a Neovim plugin that streams help from a local code model (Ollama) without making the editor wait";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    let
      # The Python packages the remote plugin needs in Neovim's python3 host.
      pythonDeps = ps: with ps; [ pynvim aiohttp msgpack nvidia-ml-py lru-dict ];
    in
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = nixpkgs.legacyPackages.${system};
        py = pkgs.python311;
        plugin = pkgs.vimUtils.buildVimPlugin {
          pname = "ai_host";
          version = "0.1.0";
          src = self;
          # wrapNeovim / home-manager put these into the python3 host's environment
          passthru.python3Dependencies = pythonDeps;
          doCheck = false;
        };
        cli = py.pkgs.buildPythonApplication {
          pname = "ai-host";
          version = "0.1.0";
          pyproject = true;
          src = self;
          build-system = [ py.pkgs.setuptools ];
          dependencies = pythonDeps py.pkgs;
          doCheck = false;
        };
      in {
        packages = {
          default = plugin;
          ai-host-nvim = plugin;
          ai-host-cli = cli;
          # Neovim with the plugin and its Python dependencies wired, for trying it out.
          neovim = pkgs.wrapNeovim pkgs.neovim-unwrapped {
            withPython3 = true;
            extraPython3Packages = pythonDeps;
            configure = {
              customRC = "lua require('ai_host').setup({})";
              packages.ai_host.start = [ plugin ];
            };
          };
        };
        apps.default = { type = "app"; program = "${cli}/bin/ai-host"; };
        devShells.default = pkgs.mkShell {
          packages = [
            pkgs.neovim
            (py.withPackages (ps: pythonDeps ps ++ (with ps; [ pytest pytest-asyncio hypothesis numpy ])))
          ];
          shellHook = ''
            echo "ai_host dev shell: make setup && make test"
          '';
        };
      })
    // {
      # home-manager: programs.ai-host.enable = true; programs.ai-host.settings = { ... };
      homeManagerModules.default = { config, lib, pkgs, ... }:
        let cfg = config.programs.ai-host;
        in {
          options.programs.ai-host = {
            enable = lib.mkEnableOption "ai_host, help from a local code model in Neovim";
            settings = lib.mkOption {
              type = lib.types.attrs;
              default = { };
              description = "Options passed to require('ai_host').setup() (see :help ai_host-config).";
            };
          };
          config = lib.mkIf cfg.enable {
            programs.neovim = {
              enable = true;
              withPython3 = true;
              extraPython3Packages = pythonDeps;
              plugins = [{
                plugin = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
                type = "lua";
                config = "require('ai_host').setup(vim.json.decode([==[${builtins.toJSON cfg.settings}]==]))";
              }];
            };
          };
        };

      # NixOS: Ollama as a service (CUDA by default) and the ai-host CLI.
      nixosModules.default = { config, lib, pkgs, ... }:
        let cfg = config.services.ai-host;
        in {
          options.services.ai-host = {
            enable = lib.mkEnableOption "Ollama for ai_host, and the ai-host CLI";
            acceleration = lib.mkOption {
              type = lib.types.nullOr (lib.types.enum [ false "cuda" "rocm" ]);
              default = "cuda";
              description = "services.ollama.acceleration: the GPU runtime Ollama uses.";
            };
            models = lib.mkOption {
              type = lib.types.listOf lib.types.str;
              default = [ "qwen2.5-coder:7b" ];
              description = "Models Ollama pulls when it starts (services.ollama.loadModels).";
            };
          };
          config = lib.mkIf cfg.enable {
            services.ollama = {
              enable = true;
              acceleration = cfg.acceleration;
              loadModels = cfg.models;
            };
            environment.systemPackages = [ self.packages.${pkgs.stdenv.hostPlatform.system}.ai-host-cli ];
          };
        };
    };
}
