"""Text a server or a model sent, made safe to show: control sequences out, length bounded, and
for the log only its size and a short hash (a server's error may echo the prompt, so our code).

    for_terminal(text)   model text for a terminal: every escape sequence and control character
                         removed but newline and tab (an OSC 52 in a reply must not set the clipboard)
    one_line(text)       server text inside one of our sentences: controls out, whitespace folded,
                         at most SHOWN_CHARS characters
    fingerprint(text)    what the log may say about server text: "1234 chars, sha256 0123456789ab"
"""

from __future__ import annotations

import hashlib
import re

# Most characters of server text quoted in one message: enough for any real error sentence, short
# enough that Neovim shows it without "-- More --" and the RPC carrying it stays small.
SHOWN_CHARS = 300
# Of a server text longer than that, how much is ever looked at (a 3 MB error is not scanned whole).
SCANNED_CHARS = 4 * SHOWN_CHARS
# Hex digits of the hash the log keeps of server text (to tell two errors apart, not to recover them).
HASH_DIGITS = 12

# ESC sequences: CSI (ESC [ ... final), OSC / DCS / SOS / PM / APC strings up to BEL or ST (or the
# end of the text: an unterminated string must not leak its payload as text), and two-character
# ESC sequences; the same with 8-bit C1 introducers (CSI = U+009B, OSC = U+009D, ...).
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# Every other control character: C0 but tab and newline, DEL, C1; and lone UTF-16 surrogates (not
# characters at all: writing one to a terminal or Neovim fails).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\s]+")


def for_terminal(text: str) -> str:
    """`text` with every escape sequence and control character removed, but newline and tab."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


def one_line(text: str, limit: int = SHOWN_CHARS) -> str:
    """Server text to quote in a sentence: no control sequences, whitespace folded to single spaces,
    at most `limit` characters (cut with an ellipsis, saying how much more there was)."""
    scanned = text[: max(limit, SCANNED_CHARS)]
    shown = _CONTROL_OR_SPACE.sub(" ", _SEQUENCE.sub("", scanned)).strip()
    if len(shown) > limit or len(text) > len(scanned):
        return shown[:limit].rstrip() + f"… ({len(text):,} characters in all)"
    return shown


def fingerprint(text: str | bytes) -> str:
    """What the log may hold of server text: its size and a short hash, never the text itself."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    unit = "chars" if isinstance(text, str) else "bytes"
    return f"{len(text)} {unit}, sha256 {hashlib.sha256(data).hexdigest()[:HASH_DIGITS]}"
