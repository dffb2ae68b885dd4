"""What is never sent: files on `security.deny`, text that is a file of secrets whatever its name,
and terminal buffers.

The deny list has gitignore's semantics, matched without regard to letter case:

    .env  *.pem  id_rsa*       no slash: matched against the file's name (never a folder of its path,
                               so `*secret*` leaves ~/src/my-secrets-manager/app.py alone)
    .docker/config.json        a slash: matched against the path, ending at the file, starting at any
                               folder (as if `**/` came first); `**` spans folders, `*` and `?` do not
    /etc/app/*.conf  ~/x/*     a leading `/` or `~/`: matched from the root or the home folder
    secrets/                   a trailing slash: any file under a folder of that name
    !public.pem                a leading `!`: a file an earlier pattern matched is sent after all

Every request is checked anew (a buffer's name changes with `:file` and `:saveas`), on the name the
buffer has and on the file it really is: symbolic links are resolved, so `config.py -> .env` is `.env`.
The text sent is sniffed as well: a buffer that *is* a dotenv file, a private key, a kubeconfig or a
`.netrc` (`:read .env` into a new buffer, a paste, a rename) is never sent, whatever it is called.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

from .errors import DeniedContent, DeniedFile, DeniedTerminal

# The sniff looks at this much of a request's text at most: a window is bounded anyway, and a file
# of secrets shows what it is in its first lines.
SNIFF_CHARS = 64 * 1024
# Share of a text's lines (not blank, not comments) that must look like a kind of secrets file for
# the text to be one: a module with two `X=1` lines among its code is not a dotenv file, a dotenv
# file with the line being typed still is.
SNIFF_SHARE = 0.6
# A dotenv file has at least this many assignments (one `MODE=prod` line alone says little).
MIN_ASSIGNMENTS = 2

_LINE = re.compile(r"(?m)^[ \t]*[^\s#]")  # a line that is neither blank nor a comment
_DOTENV = re.compile(r"(?m)^[ \t]*(?:export[ \t]+)?[A-Z_][A-Z0-9_]*=(?!=)")
_KEY_FIRST = re.compile(r"\A\s*(?:-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-\d+:)")
_KUBE_KIND = re.compile(r"(?m)^kind:[ \t]*[\"']?Config[\"']?[ \t]*$")
_KUBE_LISTS = re.compile(r"(?m)^(?:clusters|users|contexts):")
_NETRC_HOST = re.compile(r"(?m)^[ \t]*(?:machine[ \t]+\S|default\b)")
_NETRC_PASSWORD = re.compile(r"(?:^|\s)password\s+\S")
_NETRC_LINE = re.compile(r"(?m)^[ \t]*(?:machine|default|login|password|account|macdef)\b")
_DOCKER_AUTHS = re.compile(r"\"auths\"\s*:\s*\{[\s\S]*\"auth\"\s*:\s*\"")
_SERVICE_ACCOUNT = re.compile(r"\"type\"\s*:\s*\"service_account\"[\s\S]*\"private_key\"\s*:")


def refusal(request: dict[str, Any], patterns: list[str]) -> DeniedFile | None:
    """Why nothing of `request` (or of one chunk of its extra context) may be sent, or None.

    It reads `filename` (as the editor names the buffer), `path` (absolute, for resolving links),
    `buftype`, and the text that would be sent: `prefix` + `suffix`, `before` + `code` + `after`,
    or a chunk's `text`."""
    filename = str(request.get("filename") or "")
    if request.get("buftype") == "terminal" or filename.startswith("term://"):
        return DeniedTerminal("a terminal buffer")
    pattern = denied(filename, patterns, str(request.get("path") or ""))
    if pattern is not None:
        return DeniedFile(pattern)
    kind = sniff(_text_of(request))
    return DeniedContent(kind) if kind else None


def denied(filename: str, patterns: list[str], path: str = "") -> str | None:
    """The deny-list pattern the file matches (the last that decides, as in .gitignore), or None.

    `filename` is the buffer's name as the editor shows it (relative or `~/`); `path`, when known,
    its absolute path. Both are matched, and so is the file they really are (links resolved)."""
    names = _names(filename, path)
    if not names:
        return None
    decided: str | None = None
    for pattern, negated, on_name, regex in _compiled(tuple(patterns)):
        if any(regex.search(os.path.basename(n) if on_name else n) for n in names):
            decided = None if negated else pattern
    return decided


def sniff(text: str) -> str | None:
    """What `text` is when it is a file that holds secrets by nature, whatever its name ("a dotenv
    file", "a private key", ...), else None. A few regular expressions over at most SNIFF_CHARS."""
    text = text[:SNIFF_CHARS]
    if not text.strip():
        return None
    if _KEY_FIRST.match(text):
        return "a private key"
    if _KUBE_KIND.search(text) and _KUBE_LISTS.search(text):
        return "a kubeconfig"
    if '"auth' in text and _DOCKER_AUTHS.search(text):
        return "a Docker credentials file"
    if "service_account" in text and _SERVICE_ACCOUNT.search(text):
        return "a cloud service-account key"
    lines = len(_LINE.findall(text))
    assignments = len(_DOTENV.findall(text))
    if assignments >= MIN_ASSIGNMENTS and assignments >= SNIFF_SHARE * lines:
        return "a dotenv file"
    if (
        _NETRC_HOST.search(text)
        and _NETRC_PASSWORD.search(text)
        and len(_NETRC_LINE.findall(text)) >= SNIFF_SHARE * lines
    ):
        return "a .netrc file"
    return None


# Helpers ----------------------------------------------------------------------------------------


def _text_of(request: dict[str, Any]) -> str:
    """The text a request would send, whole lines joined as in the buffer (the cursor's line too)."""
    if "text" in request:
        return str(request.get("text") or "")
    if "prefix" in request or "suffix" in request:
        return str(request.get("prefix") or "") + str(request.get("suffix") or "")
    parts = (str(request.get(k) or "") for k in ("before", "code", "after"))
    return "\n".join(p for p in parts if p)


def _names(filename: str, path: str) -> list[str]:
    """The names a file goes by: as given, absolute, and with its links resolved (`/` separated)."""
    names = [n for n in (filename, path) if n]
    for n in list(names):
        full = os.path.expanduser(n)
        if os.path.isabs(full):
            names.append(full)
            try:
                names.append(os.path.realpath(full))
            except (OSError, ValueError):  # a loop of links, a NUL in the name: match what we have
                pass
    return list(dict.fromkeys(n.replace(os.sep, "/") for n in names))


@functools.lru_cache(maxsize=16)
def _compiled(patterns: tuple[str, ...]) -> list[tuple[str, bool, bool, re.Pattern[str]]]:
    """(pattern, negated, matched on the name only, regex) for each usable pattern."""
    out = []
    for pattern in patterns:
        body = pattern.strip()
        negated = body.startswith("!")
        body = body[1:] if negated else body
        if not body.strip("/"):
            continue
        regex, on_name = _translate(body)
        out.append((pattern, negated, on_name, re.compile(regex, re.IGNORECASE)))
    return out


def _translate(pattern: str) -> tuple[str, bool]:
    """A gitignore-style pattern as (regex, matched on the name only)."""
    under = pattern.endswith("/")  # a folder: every file under it
    pattern = pattern.rstrip("/")
    if "/" not in pattern and not under:
        return rf"\A{_glob(pattern)}\Z", True
    if pattern.startswith("~/"):
        start, pattern = r"\A" + re.escape(os.path.expanduser("~").replace(os.sep, "/").rstrip("/")) + "/", pattern[2:]
    elif pattern.startswith("/"):
        start, pattern = r"\A/", pattern[1:]
    else:
        start = r"(?:\A|/)"
    parts = pattern.split("/")
    regex = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            regex += ".*" if last else "(?:[^/]*/)*"
        else:
            regex += _glob(part) + ("" if last else "/")
    return start + regex + (r"/" if under else r"\Z"), False


def _glob(part: str) -> str:
    """One path component's glob (`*`, `?`, `[...]`, `[!...]`) as a regex that never spans a `/`."""
    out, i = [], 0
    while i < len(part):
        c = part[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := part.find("]", i + 2 if part[i + 1 : i + 2] in ("!", "^") else i + 1)) > 0:
            inner = part[i + 1 : end]
            negate = inner[:1] in ("!", "^")
            inner = inner[1:] if negate else inner
            out.append(
                "[" + ("^/" if negate else "") + "".join("\\" + ch if ch in "\\[&~|" else ch for ch in inner) + "]"
            )
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)
