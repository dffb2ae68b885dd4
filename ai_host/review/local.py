"""The changes in a working tree as file diffs, read with git: what `:AIReview [ref]` reviews before
any merge request exists. Tracked files against `ref` (HEAD by default, the index and unstaged
edits included), and untracked files not ignored, as new files.

git runs as a subprocess of the engine's loop (never blocking it), with a time limit, in the
repository that holds the directory the editor gave.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from ..errors import AiHostError
from ..gitlab.diffmap import FileDiff, parse_hunks

# How long one git command may take.
GIT_TIMEOUT_S = 20.0
# Files larger than this (bytes, new side) are named as not reviewed, like GitLab's too_large.
MAX_FILE_BYTES = 200_000
# The most files one local review looks at; the rest are named as not reviewed.
MAX_FILES = 100
_GIT = ("git", "-c", "core.quotePath=false", "-c", "color.ui=false")
_DIFF = ("diff", "--no-ext-diff", "--no-textconv")  # a user's external diff tool is no unified diff


class GitFailed(AiHostError):
    def user_message(self) -> str:
        return f"ai_host: {self}. Run :AIReview inside a git repository, with a ref it knows (e.g. HEAD, origin/main)."


@dataclass
class LocalChanges:
    root: str  # the repository's top directory
    files: list[FileDiff] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # path -> its new text (enclosing functions)
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why it is not reviewed


async def changes(cwd: str, ref: str = "HEAD") -> LocalChanges:
    """The working tree's changes against `ref`, in the repository that holds `cwd`."""
    if ref.startswith("-"):
        raise GitFailed(f"'{ref}' is not a ref")
    root = (await _git(cwd, "rev-parse", "--show-toplevel")).strip()
    try:
        await _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except GitFailed as e:
        raise GitFailed(f"git knows no commit '{ref}' in {root}") from e
    out = LocalChanges(root)
    listed = (await _git(root, *_DIFF, "-z", "--name-status", "-M", ref, "--")).split("\0")
    entries: list[tuple[str, str, str]] = []  # (status, old path, new path)
    i = 0
    while i < len(listed) - 1:
        status = listed[i]
        if status[:1] in ("R", "C"):
            entries.append((status[:1], listed[i + 1], listed[i + 2]))
            i += 3
        else:
            entries.append((status[:1], listed[i + 1], listed[i + 1]))
            i += 2
    untracked = (await _git(root, "ls-files", "-z", "--others", "--exclude-standard")).split("\0")
    entries += [("?", p, p) for p in untracked if p]
    for status, old, new in entries:
        if len(out.files) >= MAX_FILES:
            out.skipped[new] = f"more than {MAX_FILES} files changed"
            continue
        await _add(out, ref, status, old, new)
    return out


async def _add(out: LocalChanges, ref: str, status: str, old: str, new: str) -> None:
    path = os.path.join(out.root, new)
    if status != "D":
        try:
            size = os.path.getsize(path)
        except OSError:
            size = 0
        if size > MAX_FILE_BYTES:
            out.skipped[new] = f"too large ({size:,} bytes; the limit is {MAX_FILE_BYTES:,})"
            return
    text = _read(path) if status != "D" else None  # read once: the new file's diff and its source
    if status == "?":
        if text is None:
            out.skipped[new] = "not text (binary or not UTF-8)"
            return
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        diff = f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{line}\n" for line in lines)
    else:
        paths = [old, new] if old != new else [new]
        diff = await _git(out.root, *_DIFF, "-M", "-U3", ref, "--", *paths)
    fd = FileDiff(
        old_path=old,
        new_path=new,
        hunks=parse_hunks(diff),
        new_file=status in ("A", "?"),
        renamed_file=status == "R",
        deleted_file=status == "D",
    )
    out.files.append(fd)
    if text is not None:
        out.sources[new] = text


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if b"\0" in data:
            return None
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


async def _git(cwd: str, *args: str) -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            *_GIT,
            *args,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except (OSError, ValueError) as e:
        raise GitFailed(f"git could not run in {cwd} ({e.__class__.__name__})") from e
    try:
        async with asyncio.timeout(GIT_TIMEOUT_S):
            stdout, stderr = await proc.communicate()
    except TimeoutError as e:
        proc.kill()
        await proc.wait()
        raise GitFailed(f"git {args[0]} took longer than {GIT_TIMEOUT_S:g} s") from e
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        said = stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitFailed(f"git {args[0]} failed: {said[0][:200] if said else f'exit {proc.returncode}'}")
    return stdout.decode("utf-8", "replace")
