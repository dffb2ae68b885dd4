"""What a credential looks like on one line of text: the rules the Redactor applies, with a per-line cache.

Four kinds of evidence, tried on each line (a line seen before costs a dictionary look-up, so a
keystroke re-scans only the line that changed):

1. a provider's token shape (`ghp_…`, `xoxb-…`, `sk_live_…`, `AKIA…`, a JWT);
2. a value assigned to a name that says secret (`password: x`, `apiToken = "…"`, `-u user:pw`,
   `Authorization: Bearer …`, `.netrc` `password x`, `scheme://user:pw@host`);
3. a value assigned to a name that only may be secret (`…_key`, `auth`) when the value is random;
4. a random token on its own: long, mixed letters and digits, not a hex digest, a UUID or base64
   that decodes to text.

Multi-line shapes (private keys, a Kubernetes Secret's `data:`) are found on the whole text by
security.py before the lines are scanned.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from functools import lru_cache

LINE_CACHE_SIZE = 16_384  # lines remembered (a few windows of a few buffers)
MIN_RANDOM_LEN = 20  # a random token on its own: at least this long
MIN_SECRET_VALUE = 4  # a value assigned to a secret name: at least this long
MIN_KEYED_RANDOM = 12  # a random value assigned to a name that may be secret (`…_key`)
PRINTABLE_SHARE = 0.9  # base64 that decodes to this much printable text is a test vector, not a key

# (kind, pattern, whether its group 1 must look random: a prefix shared by many providers)
_TOKENS: list[tuple[str, re.Pattern[str], bool]] = [
    ("aws-access-key", re.compile(r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"), False),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_\w{22,255})\b"), False),
    ("gitlab-token", re.compile(r"\b(?:gl[a-z]{1,6}-(?:t\d_)?[\w\-.]{20,}|GR1348941[\w-]{20,})"), False),
    ("slack-token", re.compile(r"\bx(?:ox[a-z]|app)[-.][\w\-.]{10,}"), False),
    ("slack-webhook", re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[\w/\-]+"), False),
    ("stripe-key", re.compile(r"\b[rsw]k_(?:live|test|prod)_[A-Za-z0-9]{10,}"), False),
    ("openai-key", re.compile(r"\bsk-(?:[a-z]{2,10}\d{0,2}-)*[\w\-]{20,}"), False),
    ("google-api-key", re.compile(r"\b(?:AIza[\w\-]{35}|ya29\.[\w\-]{20,}|GOCSPX-[\w\-]{20,})"), False),
    # header.payload.signature; an unsigned token (alg none) ends with the second dot
    ("jwt", re.compile(r"\bey[A-Za-z0-9_\-]{10,}\.ey[A-Za-z0-9_\-/\\]{10,}\.(?:[A-Za-z0-9_\-/\\+]{5,}=*)?"), False),
    # lowercase, digit-bearing prefixes of many providers: npm_, dop_v1_, shpat_, hf_, pscale_pw_…
    ("token", re.compile(r"\b(?:[a-z][a-z0-9]{1,11}[_\-]){1,3}([A-Za-z0-9][\w\-.]{15,}=*)"), True),
    ("token", re.compile(r"\b(?:[A-Z][A-Za-z0-9]{1,11}[_\-]){1,2}(?:[A-Z]+[_\-])?([A-Za-z0-9][\w\-.]{19,})"), True),
]

# Names that say a value is secret (the name ends with one of these words, perhaps then `_base`,
# `_value`…: `db_password`, `apiToken`, `secret_key_base`, `_authToken`), and names that only may
# (their value is secret if it is random: `stripe_key`, `salt`)
_SECRET_END = re.compile(
    r"""(?ix)(?:pass(?:word|wd|phrase)|^pass|_pass|pwd|secret|token|api[_.\-]?key|apikey|access[_.\-]?key
    |private[_.\-]?key|secret[_.\-]?key|credentials?|[_.\-]auth|authorization|bearer|session[_.\-]?key
    |signing[_.\-]?key|encryption[_.\-]?key|master[_.\-]?key|conn(?:ection)?[_.\-]?str(?:ing)?)
    (?:[_.\-]?(?:base|value|str|string|b64|base64|hex|bytes|enc|encrypted|plain|text|\d+))?$""")
_WEAK_END = re.compile(r"(?i)(?:key|salt|dsn|hmac|seed|license|sig|signature|pin|cred|auth)(?:[_.\-]?(?:value|str|\d+))?$")
_HINTS = ("pass", "pwd", "secret", "token", "key", "auth", "bearer", "cred", "conn", "salt", "dsn", "hmac", "seed",
          "licen", "sig", "pin")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-$@")
# name, then perhaps a type (`var apiToken string =`, `password: String =`), then an operator
_ASSIGN = re.compile(
    r"""(?P<name>[A-Za-z_$@][\w.\-]*)["'\]]?(?:[ \t]*:?[ \t]*(?P<typ>[\w<>\[\]]{1,40})(?=[ \t]*=))?[ \t]*"""
    r"""(?P<op>:{1,3}=|\?=|\.=|\|\|=|=>|==?|:|,)[ \t]*(?P<q>["'`]?)""")
_QUOTED = {'"': re.compile(r'((?:\\.|[^"\\])*)"'), "'": re.compile(r"((?:\\.|[^'\\])*)'"), "`": re.compile(r"([^`]*)`")}
_UNQUOTED = re.compile(r"[^\s\"'`&;,<>(){}\[\]]+")
_UNQUOTED_YAML = re.compile(r"[^\s\"'`#,{}\[\]](?:[^\s\"'`#]*[^\s\"'`#,}\]])?")  # `password: Tr0ub4dor&3x`
# what is not a secret although a secret name holds it: references, templates, types, code
_NOT_VALUE = re.compile(
    r"""(?ix)^(?:\$[\w{(]|.*\{\{|.*\$\{|.*\{\d*\}|.*%[(sdr]|<[\w\-]+>$|\*{3,}|x{4,}|\.{3}|
    (?:none|null|nil|true|false|undefined|empty|required|optional|your[_\-]?\w*|string|str|bytes|int|bool|number|any|object)$)""")
_VALUE_END = re.compile(r"\s*(?:$|[#;,&}\])\"'\\]|//|/\*|--)")
_CODE_VALUE = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:\(|\[|$)")
_HAS_OTHER = re.compile(r"[^A-Za-z_]")

_TOKEN_GATE = re.compile(r"[\w\-./:]{16}")  # every token shape is at least this long: most lines are not
# (not the standard base64 alphabet's + and /: those are data in code, a blob or a test vector)
_LONG_TOKEN = re.compile(r"(?<![\w.\\/+=-])[A-Za-z0-9_\-]{20,}(?![\w+/=-])")
_URL_PASSWORD = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@\"'<>]*:([^\s@/\"'<>]+)@")
_AUTH_HEADER = re.compile(r"(?i)\b(?:authorization[\"']?\s*[:=]\s*[\"']?(?:basic|bearer|token|digest|negotiate)?|bearer|basic(?=\s+[A-Za-z0-9+/]{12,}))\s+([\w\-.~+/]{8,}=*)")
_CURL_USER = re.compile(r"""(?:\s|^)(?:-u|--user|--proxy-user)(?:=|[ \t]+)["']?[^\s:"']*:([^\s"']+)""")
_NETRC = re.compile(r"(?i)(?:^|\s)(?:password|passwd)[ \t]+(?!=|:)([^\s\"']{3,})(?<![.,:;])(?=\s*$|\s+(?:account|machine|login|macdef|default)\b)")


# Letter pairs common in English words and identifiers; random letters hit these far less often.
_COMMON_PAIRS = frozenset(
    "th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de hi ri ro "
    "ic ne ea ra ce li ch ll be ma si om ur ca el ta la ns di fo ho pe ec pr no ct us ac ot il tr ly nc et ut ss so "
    "rs un lo wa ge ie wh ee wi em ad ol rt po we na ul ni ts mo ow pa im mi ai sh ir su id os iv ia am fi ci vi pl "
    "ig tu ev ld ry mp fe bl ab ty op ex ke fr oo av ag if ap gr od bo sp rd do uc bu ei ov by rm ep tt oc fa ef cu "
    "rn sc gi da cr cl du ga qu ue ff ba ey ls va um pp ua up lu go ht ru ug ds lt pi rc rr eg au ck ew mu br bi pt "
    "ak pu ui rg ib tl ny ki rk ys ob mm fu ph og ms ye ud mb ip ub oi rl gu dr hr cc wn nu yp pt fl sy tp xt ize".split())
WORDLIKE_SHARE = 0.6  # of letter pairs common in words: a name made of words, not a random token


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _wordlike(s: str) -> bool:
    pairs = [p for run in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", s) for p in
             (run[i:i + 2].lower() for i in range(len(run) - 1))]
    return len(pairs) >= 4 and sum(p in _COMMON_PAIRS for p in pairs) >= WORDLIKE_SHARE * len(pairs)


def _decodes_to_text(s: str) -> bool:
    """Base64 (of any alignment: a piece of a longer value) that decodes to text: a test vector."""
    body = s.rstrip("=")
    alt = b"-_" if ("-" in s or "_" in s) else None
    for skip in range(4):
        part = body[skip:]
        try:
            raw = base64.b64decode(part[:len(part) // 4 * 4], altchars=alt, validate=True)
        except (binascii.Error, ValueError):
            continue
        text = raw.decode("utf-8", "replace")  # a piece may cut a character in two: one \ufffd
        if text and sum(c.isprintable() and c != "\ufffd" or c in "\t\r\n" for c in text) >= PRINTABLE_SHARE * len(text):
            return True
    return False


def random_looking(s: str, min_len: int = MIN_RANDOM_LEN) -> bool:
    """A token no person typed: long, letters and digits mixed, high entropy, and not a hex digest,
    a UUID, an identifier made of words, or base64 of text (a test vector)."""
    core = s.strip("=-_+/")
    if len(core) < min_len or core.startswith(("0x", "xn--")) or "AAA" in core:
        return False  # a hex number, a punycode name, binary data (runs of zero bytes)
    parts = re.split(r"[_\-.]", core)
    if len(parts) >= 3 and max(map(len, parts)) < 10:
        return False  # a compound name: test_pdb_issue_gh_94215, foo-0.1-1.noarch
    digits = sum(c.isdigit() for c in core)
    letters = sum(c.isalpha() for c in core)
    if letters < 4 or all(c in "0123456789abcdefABCDEF-" for c in core):
        return False
    if digits < 2 and not (any(c.isupper() for c in core[1:]) and any(c.islower() for c in core)):
        return False
    # classes change often in random text (aB3x), seldom in words (someName_v2)
    classes = ["a" if c.islower() else "A" if c.isupper() else "0" if c.isdigit() else "_" for c in core]
    changes = sum(a != b for a, b in zip(classes, classes[1:])) / max(1, len(core) - 1)
    if changes < 0.25 or _entropy(core) < min(4.0, math.log2(len(core)) - 0.7) or _wordlike(core):
        return False
    return not _decodes_to_text(s)


def _basic_credentials(value: str) -> bool:
    try:
        return b":" in base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False


def _value(line: str, start: int, quote: str, op: str) -> tuple[int, int] | None:
    if quote:
        m = _QUOTED[quote].match(line, start)
        return (start, m.end(1)) if m else None
    m = (_UNQUOTED_YAML if op == ":" else _UNQUOTED).match(line, start)
    return (start, m.end()) if m else None


def _names(line: str, lower: str) -> list[re.Match[str]]:
    """The assignments whose name holds a hint word, found from the word back (a scan for names at
    every position of every line was most of the cost)."""
    starts = set()
    for word in _HINTS:
        at = lower.find(word)
        while at >= 0:
            start = at
            while start > 0 and line[start - 1] in _NAME_CHARS:
                start -= 1
            starts.add(start)
            at = lower.find(word, at + len(word))
    out = []
    for start in sorted(starts):
        m = _ASSIGN.match(line, start)
        if m:
            out.append(m)
    return out


def _assignments(line: str, lower: str) -> list[tuple[int, int, str]]:
    """Values assigned to secret names (or random values assigned to names that may be secret)."""
    found = []
    for m in _names(line, lower):
        name, op, quote = m.group("name").strip(".-"), m.group("op"), m.group("q")
        if m.group("typ") and not _SECRET_END.search(name):
            name = m.group("typ")  # `String apiToken = "…"`: the type came first
        strong = _SECRET_END.search(name)
        if not strong and not _WEAK_END.search(name):
            continue
        quoted_name = line[m.end("name"):m.end("name") + 1] in ("\"", "'")
        if op == "==" or op == "," and not (quote and name.isupper() and quoted_name):
            continue  # `f(password, x)`, `token == "async"`; but `setProperty("DB_PASSWORD", "x")` counts
        span = _value(line, m.end(), quote, op)
        if span is None:
            continue
        value = line[span[0]:span[1]]
        if len(value) < MIN_SECRET_VALUE or _NOT_VALUE.match(value) or value.startswith("<redacted:") \
                or re.fullmatch(r"\d+(?:\.\d+){2,}", value):  # a version, an address, an OID
            continue
        if not strong:
            if random_looking(value, MIN_KEYED_RANDOM):
                found.append((*span, "secret"))
            continue
        after = line[span[1]:span[1] + 1]
        rest = line[span[1] + bool(quote):]
        if quote and (value != value.strip() or re.match(r"\s*[+.%]", rest)):
            continue  # a piece of a longer string: `"Basic " + auth`, `'{0}:{1}'.format(…)`
        if not quote and not _VALUE_END.match(rest):
            continue  # words follow: a sentence (`password: password to use`), not a config value
        if not quote:
            if op == ":" and (re.match(r"[A-Z]\w*$|[a-z]+\[", value) or re.match(r"\s*[=,)]", line[span[1]:])):
                continue  # a type annotation (`token: str = ""`, `password: Secret`)
            if _CODE_VALUE.match(value) and (after in ("(", "[") or "." in value.strip(".")):
                continue  # `token = tokens[0]`, `secret = os.urandom(16)`, `pwd = self.pwd`
            if (op in ("=", ":=", "=>") or quoted_name) and _CODE_VALUE.match(value) and not _HAS_OTHER.search(value) \
                    and not (name.isupper() or line.lstrip().startswith(("-", "export "))):
                continue  # `password = pwd`: a variable, unless the name is an environment variable's
        elif " " in value.strip() and not random_looking(value.replace(" ", ""), MIN_KEYED_RANDOM):
            continue  # a sentence: a prompt or a message, not a credential
        found.append((*span, "password"))
    return found


@lru_cache(maxsize=LINE_CACHE_SIZE)
def scan_line(line: str) -> tuple[tuple[int, int, str], ...]:
    """The credentials on one line: (start, end, kind), sorted, not overlapping."""
    found: list[tuple[int, int, str]] = []
    for kind, pattern, random_body in _TOKENS if _TOKEN_GATE.search(line) else ():
        for m in pattern.finditer(line):
            if not random_body or random_looking(m.group(1), MIN_KEYED_RANDOM):
                found.append((m.start(), m.end(), kind))
    if "://" in line:
        found.extend((m.start(1), m.end(1), "url-password") for m in _URL_PASSWORD.finditer(line))
    lower = line.lower()
    if "auth" in lower or "bearer" in lower or "basic" in lower:
        found.extend((m.start(1), m.end(1), "authorization") for m in _AUTH_HEADER.finditer(line)
                     if random_looking(m.group(1), MIN_KEYED_RANDOM) or _basic_credentials(m.group(1)))
    if "-u" in line or "--user" in line or "--proxy-user" in line:
        found.extend((m.start(1), m.end(1), "password") for m in _CURL_USER.finditer(line))
    if "pass" in lower:
        found.extend((m.start(1), m.end(1), "password") for m in _NETRC.finditer(line)
                     if lower.lstrip().startswith(("machine", "login", "password", "default")) or " login " in lower)
    if any(word in lower for word in _HINTS):
        found.extend(_assignments(line, lower))
    for m in _LONG_TOKEN.finditer(line):
        if random_looking(m.group(0)):
            found.append((m.start(), m.end(), "random"))
    return _disjoint(found)


def _disjoint(found: list[tuple[int, int, str]]) -> tuple[tuple[int, int, str], ...]:
    out: list[tuple[int, int, str]] = []
    for start, end, kind in sorted(found, key=lambda f: (f[0], -f[1])):
        if out and start < out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end, out[-1][2])
            continue
        out.append((start, end, kind))
    return tuple(out)


def clear_cache() -> None:
    scan_line.cache_clear()
