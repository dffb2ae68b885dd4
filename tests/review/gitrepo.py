"""A real git repository made in a test, and its merge-request diff as GitLab's API gives it.

    repo = GitRepo.create(tmp_path)          # main with a base commit, branch `feature` with the changes
    mr = repo.mr_diff()                      # base/start/head SHAs + /diffs entries (hunk-only `diff`)
    mr2 = repo.push({"app.py": "...", "old.txt": None})   # a new commit on `feature`: the next version

The `feature` branch adds, changes, renames (with an edit), deletes files, touches a non-ASCII path,
a file larger than a small diff limit, and a config file holding an AWS key (a secret to redact).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}
GIT_IDENTITY = [
    "-c",
    "user.name=t",
    "-c",
    "user.email=t@t",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "core.quotepath=false",
    "-c",
    "init.defaultBranch=main",
]
NULL_MODE = "000000"
GITLAB_NULL_MODE = "0"  # [inf] GitLab shows a missing side's mode as "0"
BIG_FILE_LINES = 4000  # lines of the oversized file (about 100 KB of diff): past a small patch limit
SECRET_FILE = "config/settings.py"
# A credential shaped like a real AWS key id (not AWS's documented EXAMPLE one, which rules may allow).
AWS_KEY_ID = "AKIA" + "QX7Z2LMN4PRT6VW8"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8LmN2pQr"
NON_ASCII_PATH = "docs/grüße.md"

BASE_FILES: dict[str, str] = {
    "app.py": "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(12)),
    "README.md": "# demo\n\nA small project.\n",
    "old_name.py": "def helper():\n    return 1\n\n\ndef other():\n    return 2\n",
    "obsolete.txt": "this file goes away\nline two\n",
    NON_ASCII_PATH: "Hallo\nWelt\n",
}


def _feature_changes() -> dict[str, str | None]:
    app = BASE_FILES["app.py"].replace("    return x + 3\n", "    y = x * 3\n    return y + 3\n")
    app = app.replace("def f9(x):\n    return x + 9\n", "def f9(x):\n    return x - 9\n")
    return {
        "app.py": app,
        "new_module.py": "import os\n\n\ndef run():\n    return os.getcwd()\n",
        "obsolete.txt": None,
        NON_ASCII_PATH: "Hallo\nschöne Welt\n",
        "big.txt": "".join(
            f"line {i} of a generated file that is far too large to review\n" for i in range(BIG_FILE_LINES)
        ),
        SECRET_FILE: f'AWS_ACCESS_KEY_ID = "{AWS_KEY_ID}"\nAWS_SECRET_ACCESS_KEY = "{AWS_SECRET}"\nDEBUG = False\n',
    }


@dataclass
class MrDiff:
    """What the GitLab double needs for one MR version."""

    base_sha: str
    start_sha: str
    head_sha: str
    diffs: list[dict[str, object]] = field(default_factory=list)


class GitRepo:
    """A throwaway repository: `main` (the target) and `feature` (the source branch)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, tmp_path: Path) -> GitRepo:
        repo = cls(tmp_path / "repo")
        repo.path.mkdir(parents=True)
        repo.git("init", "-q")
        repo._write({**BASE_FILES})
        repo.commit("base")
        repo.git("checkout", "-q", "-b", "feature")
        repo.git("mv", "old_name.py", "renamed.py")
        renamed = BASE_FILES["old_name.py"].replace("return 2", "return 3")
        repo._write({"renamed.py": renamed, **_feature_changes()})
        repo.commit("feature work")
        return repo

    def git(self, *args: str) -> str:
        out = subprocess.run(
            ["git", *GIT_IDENTITY, *args], cwd=self.path, check=True, capture_output=True, env={**os.environ, **GIT_ENV}
        )
        return out.stdout.decode("utf-8")

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def push(self, changes: dict[str, str | None], message: str = "more work") -> MrDiff:
        """Commit `changes` (path -> text, None deletes) on `feature`; the new version's diff."""
        self._write(changes)
        self.commit(message)
        return self.mr_diff()

    def mr_diff(self, target: str = "main", source: str = "feature") -> MrDiff:
        """The MR diff of `source` into `target` as GitLab computes it: from the merge base."""
        head = self.git("rev-parse", source).strip()
        start = self.git("rev-parse", target).strip()
        base = self.git("merge-base", target, source).strip()
        return MrDiff(base_sha=base, start_sha=start, head_sha=head, diffs=self.diff_entries(base, head))

    def diff_entries(self, base: str, head: str) -> list[dict[str, object]]:
        """GitLab-shaped /diffs entries, one per changed file, in git's order."""
        raw = self.git("diff", "--raw", "-z", "-M", "--no-abbrev", base, head).split("\0")
        entries: list[dict[str, object]] = []
        i = 0
        while i < len(raw) - 1:
            a_mode, b_mode, _a, _b, status = raw[i].lstrip(":").split(" ")
            if status.startswith(("R", "C")):
                old_path, new_path, i = raw[i + 1], raw[i + 2], i + 3
            else:
                old_path = new_path = raw[i + 1]
                i += 2
            paths = [old_path] if old_path == new_path else [old_path, new_path]
            patch = self.git("diff", "--no-color", "--no-ext-diff", "-M", "-U3", base, head, "--", *paths)
            entries.append(
                {
                    "old_path": old_path,
                    "new_path": new_path,
                    "a_mode": GITLAB_NULL_MODE if a_mode == NULL_MODE else a_mode,
                    "b_mode": GITLAB_NULL_MODE if b_mode == NULL_MODE else b_mode,
                    "new_file": status == "A",
                    "renamed_file": status.startswith("R"),
                    "deleted_file": status == "D",
                    "generated_file": False,
                    "diff": hunks_only(patch),
                }
            )
        return entries

    def read(self, ref: str, path: str) -> bytes | None:
        """A file's bytes at `ref`, or None where it does not exist (the double's Files API)."""
        out = subprocess.run(
            ["git", "show", f"{ref}:{path}"], cwd=self.path, capture_output=True, env={**os.environ, **GIT_ENV}
        )
        return out.stdout if out.returncode == 0 else None

    def _write(self, files: dict[str, str | None]) -> None:
        for rel, text in files.items():
            target = self.path / rel
            if text is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")


def hunks_only(patch: str) -> str:
    """A `git diff` of one file cut to what GitLab's `diff` field holds: from the first `@@` on."""
    at = patch.find("\n@@")
    if patch.startswith("@@"):
        return patch
    return patch[at + 1 :] if at >= 0 else ""
