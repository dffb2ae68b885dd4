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
_KEY_LINE = 60  # the shortest full line of a key's body (a text without so many base64 characters in a row has none)
_KEY_FULL = rf"""{_B64_QUOTE}(?![0-9a-fA-F]+["']?,?[ \t]*$)[A-Za-z0-9+/]{{{_KEY_LINE},76}}{_B64_END}"""
_KEY_PART = rf"""{_B64_QUOTE}=?[A-Za-z0-9+/]{{1,76}}{_B64_END}"""
# a run: at least one full line and one more (the body of a key whose BEGIN line is not in the text)
_KEY_BODY = re.compile(rf"(?m)^((?:{_KEY_PART}\n)?(?:{_KEY_FULL}\n)+{_KEY_PART})$")
# the lines just before an END line (a text that starts on a key's last line or two)
_KEY_TAIL = re.compile(rf"(?m)^((?:{_KEY_PART}\n)+)(?=[ \t]*[\"']?-----END [A-Z0-9 ]*PRIVATE KEY)")

# (kind, pattern, group holding the secret: 0 = the whole match, literals of which one must be in
# the text for the pattern to be tried at all: a cheap pre-check, since this runs on every request;
# none: tried when the text holds a run of base64 as long as a key's line)
_PATTERNS: list[tuple[str, re.Pattern[str], int, tuple[str, ...]]] = [
    (
        "private-key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"
        ),
        0,
        ("PRIVATE KEY",),
    ),
    # A key's body without its BEGIN line (a window or chunk that starts inside a key).
    ("private-key", _KEY_TAIL, 1, ("-----END",)),
    ("private-key", _KEY_BODY, 1, ()),
]

# A Kubernetes Secret's values (base64, whatever their names) under `data:`; the window may start
# inside the block, after its `kind: Secret` line, so any `data:` block of base64 values counts.
_K8S_DATA = re.compile(
    r"(?m)^([ \t]*)(?:data|binaryData):[ \t]*\n((?:\1[ \t]+[\w.\-]+:[ \t]*[A-Za-z0-9+/]{4,}={0,2}[ \t]*(?:\n|$))+)"
)
_K8S_VALUE = re.compile(r"(?m)^([ \t]+[\w.\-]+:[ \t]*)([A-Za-z0-9+/]{4,}={0,2})[ \t]*$")

_PLACEHOLDER = re.compile(r"<redacted:[a-z0-9-]+:\d+>")
_PLACEHOLDER_LINE = re.compile(r"(?m)^.*<redacted:.*$")
_PLACEHOLDER_SPLIT = re.compile(r"(<redacted:[a-z0-9-]+:\d+>)")
MIN_REPEATED = 8  # a secret found once is redacted elsewhere in the text too when at least this long


def _replace_standalone(text: str, secret: str, placeholder: str) -> str:
    """`text` with each occurrence of `secret` that is not part of a longer word replaced."""
    out, at = [], 0
    i = text.find(secret)
    while i >= 0:
        j = i + len(secret)
        if not (
            _word_char(text[i - 1 : i])
            and _word_char(secret[0])
            or _word_char(text[j : j + 1])
            and _word_char(secret[-1])
        ):
            out += [text[at:i], placeholder]
            at = j
        i = text.find(secret, j)
    return "".join(out) + text[at:]


def _word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


@dataclass
class Redactor:
    """Redacts the texts of one request; remembers what it replaced, to restore proposals locally."""

    secrets: dict[str, str] = field(default_factory=dict)  # placeholder -> secret
    unrestored: list[str] = field(default_factory=list)  # placeholders the last restore() left: moved
    _by_secret: dict[str, str] = field(default_factory=dict)
    _homes: set[str] = field(default_factory=set)  # the redacted lines that hold a placeholder
    # scan only the lines where a rule may match (`candidate_lines`); off: every line, the same result
    prefilter: bool = field(default=True, repr=False)

    def redact(self, text: str) -> str:
        for kind, pattern, group, hints in _PATTERNS:
            if any(h in text for h in hints) if hints else secret_rules.has_base64_run(text, _KEY_LINE):
                text = pattern.sub(functools.partial(self._replace, kind=kind, group=group), text)
        if "data:" in text or "binaryData:" in text:
            text = _K8S_DATA.sub(lambda m: _K8S_VALUE.sub(self._k8s_value, m.group(0)), text)
        pieces, at = [], 0
        for start, end in (secret_rules.candidate_lines if self.prefilter else secret_rules.every_line)(text):
            line = text[start:end]
            redacted = self._redact_line(line)
            if redacted != line:
                pieces += [text[at:start], redacted]
                at = end
        text = "".join(pieces) + text[at:] if pieces else text
        text = self._elsewhere(text)
        if "<redacted:" in text:
            self._homes.update(_normal(line) for line in _PLACEHOLDER_LINE.findall(text))
        return text

    def _elsewhere(self, text: str) -> str:
        """A secret found once is redacted wherever else it stands in the text, on its own (not inside
        a longer word): `token = 'x7Qk…'` then `headers = {'X-Key': 'x7Qk…'}`. Only distinctive ones:
        a secret that is a plain word (`postgres`) would blank that word everywhere."""
        for secret in sorted(self._by_secret, key=len, reverse=True):
            if len(secret) < MIN_REPEATED or "\n" in secret or secret.isalpha() or secret not in text:
                continue
            parts = _PLACEHOLDER_SPLIT.split(text)
            for i in range(0, len(parts), 2):  # not inside a placeholder
                if secret in parts[i]:
                    parts[i] = _replace_standalone(parts[i], secret, self._by_secret[secret])
            text = "".join(parts)
        return text

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
        if _PLACEHOLDER.fullmatch(secret) or m.re is _KEY_BODY and secret_rules.not_a_key_body(secret):
            return m.group(0)  # (base64 lines without a BEGIN line: a gzip, a PNG, a text are no key)
        placeholder = self._placeholder(secret, kind)
        start, end = m.span(group)
        whole_start = m.start(0)
        text = m.group(0)
        return text[: start - whole_start] + placeholder + text[end - whole_start :]

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
                self.unrestored += [
                    p for p in _PLACEHOLDER.findall(line) if p in self.secrets and p not in self.unrestored
                ]
        return "\n".join(lines)


def _normal(line: str) -> str:
    return " ".join(line.split())
