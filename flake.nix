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
      # The one source of the version (pyproject.toml and ai_host/__init__.py read it too).
      version = builtins.replaceStrings [ "\n" ] [ "" ] (builtins.readFile ./ai_host/VERSION);
    in
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = nixpkgs.legacyPackages.${system};
        py = pkgs.python311;
        plugin = pkgs.vimUtils.buildVimPlugin {
          pname = "ai_host";
          inherit version;
          src = self;
          # wrapNeovim / home-manager put these into the python3 host's environment
          passthru.python3Dependencies = pythonDeps;
          doCheck = false;
        };
        cli = py.pkgs.buildPythonApplication {
          pname = "ai-host";
          inherit version;
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

      # NixOS: Ollama as a service (CUDA by default) and the ai-host CLI; services.ai-host-review runs
      # the GitLab webhook receiver (`ai-host review-server`, docs/review-server.md) next to Ollama.
      nixosModules.default = { config, lib, pkgs, ... }:
        let
          cfg = config.services.ai-host;
          rcfg = config.services.ai-host-review;
          cli = self.packages.${pkgs.stdenv.hostPlatform.system}.ai-host-cli;
          ollama = config.services.ollama;
          ollamaUnit = lib.optional ollama.enable "ollama.service";
          args = [
            "--host" rcfg.host "--port" (toString rcfg.port) "--gitlab-url" rcfg.gitlabUrl
            "--queue" (toString rcfg.queue)
          ] ++ lib.optionals (rcfg.model != null) [ "--model" rcfg.model ]
            ++ lib.optionals (rcfg.caFile != null) [ "--ca-file" (toString rcfg.caFile) ]
            ++ rcfg.extraArgs;
          # Secrets come in as systemd credentials (readable by the dynamic user only), never in the store.
          readCredential = name: var: ''
            if [ -r "$CREDENTIALS_DIRECTORY/${name}" ]; then
              ${var}="$(< "$CREDENTIALS_DIRECTORY/${name}")"; export ${var}
            fi
          '';
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

          options.services.ai-host-review = {
            enable = lib.mkEnableOption "the GitLab merge-request review webhook receiver (ai-host review-server)";
            host = lib.mkOption {
              type = lib.types.str;
              default = "127.0.0.1";
              description = "Address to listen on; put a TLS reverse proxy in front when GitLab is on another host.";
            };
            port = lib.mkOption {
              type = lib.types.port;
              default = 8808;
              description = "Port to listen on; the GitLab hook URL is http(s)://HOST:PORT/webhook.";
            };
            gitlabUrl = lib.mkOption {
              type = lib.types.str;
              example = "https://gitlab.example.com";
              description = "GitLab's URL (or its /api/v4): the only host the API token is sent to.";
            };
            secretFile = lib.mkOption {
              type = lib.types.nullOr lib.types.path;
              default = null;
              example = "/run/secrets/ai-host-webhook-secret";
              description = "File holding the hook's Secret token (becomes $AI_HOST_WEBHOOK_SECRET). Not in the Nix store.";
            };
            tokenFile = lib.mkOption {
              type = lib.types.nullOr lib.types.path;
              default = null;
              example = "/run/secrets/ai-host-gitlab-token";
              description = "File holding a project access token with `api` scope (becomes $AI_HOST_GITLAB_TOKEN).";
            };
            environmentFile = lib.mkOption {
              type = lib.types.nullOr lib.types.path;
              default = null;
              description = "Instead of secretFile/tokenFile: a file of AI_HOST_WEBHOOK_SECRET=... and AI_HOST_GITLAB_TOKEN=... lines.";
            };
            caFile = lib.mkOption {
              type = lib.types.nullOr lib.types.path;
              default = null;
              description = "PEM file of a private CA that signed GitLab's certificate (added to the system's roots).";
            };
            model = lib.mkOption {
              type = lib.types.nullOr lib.types.str;
              default = null;
              example = "qwen2.5-coder:7b";
              description = "Model for reviews (default: ai_host's models.review).";
            };
            queue = lib.mkOption {
              type = lib.types.ints.positive;
              default = 16;
              description = "Merge requests waiting at most; past it the one that waited longest is dropped.";
            };
            extraArgs = lib.mkOption {
              type = lib.types.listOf lib.types.str;
              default = [ ];
              description = "More arguments for `ai-host review-server`.";
            };
          };

          config = lib.mkMerge [
            (lib.mkIf cfg.enable {
              services.ollama = {
                enable = true;
                acceleration = cfg.acceleration;
                loadModels = cfg.models;
              };
              environment.systemPackages = [ cli ];
            })
            (lib.mkIf rcfg.enable {
              assertions = [{
                assertion = rcfg.environmentFile != null || (rcfg.secretFile != null && rcfg.tokenFile != null);
                message = "services.ai-host-review: set secretFile and tokenFile, or environmentFile.";
              }];
              systemd.services.ai-host-review = {
                description = "ai_host GitLab merge-request review webhook receiver";
                wantedBy = [ "multi-user.target" ];
                wants = [ "network-online.target" ] ++ ollamaUnit;
                after = [ "network-online.target" ] ++ ollamaUnit;
                environment = lib.optionalAttrs ollama.enable {
                  OLLAMA_HOST = "http://${ollama.host}:${toString ollama.port}";
                };
                script = readCredential "secret" "AI_HOST_WEBHOOK_SECRET"
                  + readCredential "token" "AI_HOST_GITLAB_TOKEN"
                  + "exec ${cli}/bin/ai-host review-server ${lib.escapeShellArgs args}\n";
                serviceConfig = {
                  DynamicUser = true;
                  Restart = "on-failure";
                  RestartSec = 5;
                  KillSignal = "SIGTERM";  # the receiver cancels its reviews and closes its sessions
                  TimeoutStopSec = 15;
                  EnvironmentFile = lib.optional (rcfg.environmentFile != null) rcfg.environmentFile;
                  LoadCredential = lib.optional (rcfg.secretFile != null) "secret:${toString rcfg.secretFile}"
                    ++ lib.optional (rcfg.tokenFile != null) "token:${toString rcfg.tokenFile}";
                  # Hardening. PrivateDevices stays off: the GPU gate reads memory use through NVML (/dev/nvidia*).
                  NoNewPrivileges = true;
                  CapabilityBoundingSet = "";
                  ProtectSystem = "strict";
                  ProtectHome = true;
                  PrivateTmp = true;
                  ProtectKernelTunables = true;
                  ProtectKernelModules = true;
                  ProtectKernelLogs = true;
                  ProtectControlGroups = true;
                  ProtectClock = true;
                  ProtectHostname = true;
                  RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
                  RestrictNamespaces = true;
                  RestrictRealtime = true;
                  RestrictSUIDSGID = true;
                  LockPersonality = true;
                  SystemCallArchitectures = "native";
                  SystemCallFilter = [ "@system-service" "~@privileged" ];
                  UMask = "0077";
                };
              };
            })
          ];
        };
    };
}
