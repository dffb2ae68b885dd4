"""flake.nix parses (nix-instantiate --parse; evaluating it needs nixpkgs, which is not reachable here)."""

import shutil
import subprocess

from tests.conftest import ROOT


def test_the_flake_parses_and_has_its_outputs():
    nix = shutil.which("nix-instantiate")
    assert nix, "nix-instantiate is missing: run `make setup` (it installs Debian's nix-bin)"
    out = subprocess.run([nix, "--parse", str(ROOT / "flake.nix")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = (ROOT / "flake.nix").read_text()
    for output in [
        "packages",
        "devShells.default",
        "homeManagerModules.default",
        "nixosModules.default",
        "apps.default",
    ]:
        assert output in text
