"""Keeping secrets on the machine: credentials redacted from every prompt, denied files never sent.

Each secret found is replaced by a numbered placeholder (`<redacted:github-token:1>`); the
placeholders are mapped back locally when a proposal is applied, so a refactor never replaces a
real secret with a placeholder, and the secret itself never leaves.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from .deny import denied  # noqa: F401  (the deny list lives in deny.py; kept importable from here)

from . import secret_rules

# A line of a key's body: 60-76 base64 characters (PEM and PGP armour wrap at 64, OpenSSH keys at
# 70, MIME at 76), quoted or not; a line of hex alone (a digest) is never one. The first and last
# lines of a run may be shorter: the end of the body, or a line the text sent starts or ends inside.
_B64_QUOTE, _B64_END = r"""[ \t]*["']?""", r"""={0,2}(?:\\n)?["']?,?[ \t]*"""
_KEY_FULL = rf"""{_B64_QUOTE}(?![0-9a-fA-F]+["']?,?[ \t]*$)[A-Za-z0-9+/]{{60,76}}{_B64_END}"""
_KEY_PART = rf"""{_B64_QUOTE}=?[A-Za-z0-9+/]{{1,76}}{_B64_END}"""
# a run: at least one full line and one more (the body of a key whose BEGIN line is not in the text)
_KEY_BODY = re.compile(rf"(?m)^((?:{_KEY_PART}\n)?(?:{_KEY_FULL}\n)+{_KEY_PART})$")
# the lines just before an END line (a text that starts on a key's last line or two)
_KEY_TAIL = re.compile(rf"(?m)^((?:{_KEY_PART}\n)+)(?=[ \t]*[\"']?-----END [A-Z0-9 ]*PRIVATE KEY)")

# (kind, pattern, group holding the secret: 0 = the whole match, literals of which one must be in
# the text for the pattern to be tried at all: a cheap pre-check, since this runs on every request;
# none: always tried)
_PATTERNS: list[tuple[str, re.Pattern[str], int, tuple[str, ...]]] = [
    ("private-key", re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"), 0,
     ("PRIVATE KEY",)),
    # A key's body without its BEGIN line (a window or chunk that starts inside a key).
    ("private-key", _KEY_TAIL, 1, ("-----END",)),
    ("private-key", _KEY_BODY, 1, ()),
]

# A Kubernetes Secret's values (base64, whatever their names) under `data:`; the window may start
# inside the block, after its `kind: Secret` line, so any `data:` block of base64 values counts.
_K8S_DATA = re.compile(r"(?m)^([ \t]*)(?:data|binaryData):[ \t]*\n((?:\1[ \t]+[\w.\-]+:[ \t]*[A-Za-z0-9+/]{4,}={0,2}[ \t]*(?:\n|$))+)")
_K8S_VALUE = re.compile(r"(?m)^([ \t]+[\w.\-]+:[ \t]*)([A-Za-z0-9+/]{4,}={0,2})[ \t]*$")

_PLACEHOLDER = re.compile(r"<redacted:[a-z0-9-]+:\d+>")


@dataclass
class Redactor:
    """Redacts the texts of one request; remembers what it replaced, to restore proposals locally."""

    secrets: dict[str, str] = field(default_factory=dict)  # placeholder -> secret
    unrestored: list[str] = field(default_factory=list)  # placeholders the last restore() left: moved
    _by_secret: dict[str, str] = field(default_factory=dict)
    _homes: set[str] = field(default_factory=set)  # the redacted lines that hold a placeholder

    def redact(self, text: str) -> str:
        for kind, pattern, group, hints in _PATTERNS:
            if not hints or any(h in text for h in hints):
                text = pattern.sub(functools.partial(self._replace, kind=kind, group=group), text)
        if "data:" in text or "binaryData:" in text:
            text = _K8S_DATA.sub(lambda m: _K8S_VALUE.sub(self._k8s_value, m.group(0)), text)
        lines = [self._redact_line(line) for line in text.split("\n")]
        self._homes.update(_normal(line) for line in lines if "<redacted:" in line)
        return "\n".join(lines)

    def _k8s_value(self, m: re.Match[str]) -> str:
        value = m.group(2)
        if len(value) % 4 or value.isalpha() and value.islower():  # not base64, or a word (a ConfigMap)
            return m.group(0)
        return m.group(1) + self._placeholder(value, "k8s-secret")

    def _redact_line(self, line: str) -> str:
        found = secret_rules.scan_line(line)
        if not found:
            return line
        out, at = [], 0
        for start, end, kind in found:
            secret = line[start:end]
            if _PLACEHOLDER.search(secret):
                continue
            out += [line[at:start], self._placeholder(secret, kind)]
            at = end
        return "".join(out) + line[at:]

    def _placeholder(self, secret: str, kind: str) -> str:
        placeholder = self._by_secret.get(secret)
        if placeholder is None:
            placeholder = f"<redacted:{kind}:{len(self.secrets) + 1}>"
            self.secrets[placeholder] = secret
            self._by_secret[secret] = placeholder
        return placeholder

    def _replace(self, m: re.Match[str], kind: str, group: int) -> str:
        secret = m.group(group)
        if _PLACEHOLDER.fullmatch(secret):
            return m.group(0)
        placeholder = self._placeholder(secret, kind)
        start, end = m.span(group)
        whole_start = m.start(0)
        text = m.group(0)
        return text[: start - whole_start] + placeholder + text[end - whole_start:]

    def restore(self, text: str, before: str = "", after: str = "") -> str:
        """Put the real secrets back where the model kept our placeholders (locally, never sent), but
        only on a line the redacted text had (whitespace aside): a placeholder the model moved
        elsewhere (into a URL, a log call) stays a placeholder and is listed in `unrestored`.
        `before` / `after`: the rest of the first / last line, when the text is a piece of a line."""
        self.unrestored = []
        if not self.secrets or "<redacted:" not in text:
            return text
        lines = text.split("\n")
        for i, line in enumerate(lines):
            if "<redacted:" not in line:
                continue
            whole = (before if i == 0 else "") + line + (after if i == len(lines) - 1 else "")
            if _normal(whole) in self._homes:
                lines[i] = _PLACEHOLDER.sub(lambda m: self.secrets.get(m.group(0), m.group(0)), line)
            else:
                self.unrestored += [p for p in _PLACEHOLDER.findall(line) if p in self.secrets and p not in self.unrestored]
        return "\n".join(lines)


def _normal(line: str) -> str:
    return " ".join(line.split())
