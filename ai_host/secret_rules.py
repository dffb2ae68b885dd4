"""What a credential looks like on one line of text: the rules the Redactor applies, with a per-line cache.

Four kinds of evidence, tried on each line (a line seen before costs a dictionary look-up, so a
keystroke re-scans only the line that changed):

1. a provider's token shape (`ghp_…`, `xoxb-…`, `sk_live_…`, `AKIA…`, a JWT, a known prefix or
   whole shape of one provider, a short prefix with a hex body, a private key's DER start);
2. a value assigned to a name that says secret (`password: x`, `apiToken = "…"`, `-u user:pw`,
   `Authorization: Bearer …`, `.netrc` `password x`, `scheme://user:pw@host`, `<password>x<`);
3. a value assigned to a name that only may be secret (`…_key`, `auth`, `session`) when the value
   is random (or a key's hex, or base64 of `user:password`);
4. a random token on its own (letters and digits, or base64): long, mixed classes, entropy
   like a random string of its alphabet, not hex (a digest, a UUID), not a name made of words, not
   base64 that decodes to text (unless `user:password`), to structured data or to a known file.

`candidate_lines` picks, in one pass over the whole text, the lines on which any of these may
match; the others are not scanned at all. Multi-line shapes (private keys, a Kubernetes Secret's
`data:`) are found on the whole text by security.py before the lines are scanned.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from functools import lru_cache
from typing import Iterator

LINE_CACHE_SIZE = 16_384  # lines remembered (a few windows of a few buffers)
MIN_RANDOM_LEN = 20  # a random token on its own: at least this long
MIN_SECRET_VALUE = 4  # a value assigned to a secret name: at least this long
MIN_KEYED_RANDOM = 12  # a random value assigned to a name that may be secret (`…_key`)
IN_ORDER_SHARE = 0.7  # of neighbours in alphabet order (or the same letter): a sequence; random: 1 in 18
# a base64 token this long without padding is a line of wrapped data (PEM wraps at 64, OpenSSH at
# 70, MIME at 76): an icon, a blob; a key's body is two or more such lines (security.py)
DATA_LINE = (60, 76)
SINGLE_CASE_LONG = 24  # a token of one case and digits this long may change class less often (few digits)
DOTTED_RANDOM_LEN = 24  # a random token after a dot: at least this long (an attribute's name is shorter or words)
PRINTABLE_SHARE = 0.9  # base64 that decodes to this much printable text is a test vector, not a key
MIN_8BIT_TEXT = 12  # bytes; random ones are letters or spaces (as Latin-1) less than half the time
ZERO_BYTE_SHARE = 0.1  # base64 that decodes to this many zero bytes (and 3 or more) is data, not a key
ASCII_SHARE, MIN_ASCII_BYTES = 0.7, 40  # or to this much printable ASCII (random: under 0.65), if that long
_NOT_ASCII_TEXT = bytes(b for b in range(256) if not 32 <= b < 127)

# Prefixes only one provider's tokens start with (public token formats): the body is not checked.
PROVIDER_PREFIXES = (
    "shippo_live_",
    "shippo_test_",
    "duffel_live_",
    "duffel_test_",
    "pgar_",
    "pgak_",
    "spu-",
    "rootly_",
    "lsv2_pt_",
    "lsv2_sk_",
    "bb_pr_",
    "bb_ma_",
    "BBDC-",
    "hvs.",
    "hvb.",
    "hvr.",
    "da2-",
    "NRAK-",
    "NRII-",
    "NRBR-",
    "NRRA-",
    "NRJS-",
    "ATATT",
    "ATCTT",
    "FlyV1 fm1_",
    "FlyV1 fm2_",
    "pypi-AgE",
    "sq0atp-",
    "sq0csp-",
    "dop_v1_",
    "doo_v1_",
    "dor_v1_",
    "glsa_",
    "glc_",
    "xkeysib-",
    "sntrys_",
    "pnu_",
    "rdme_",
    "lin_api_",
    "PMAK-",
    "ops_ey",
    "CFPAT-",
    "FLWSECK-",
    "FLWSECK_TEST-",
    "FLWPUBK-",
    "FLWPUBK_TEST-",
    "AGE-SECRET-KEY-1",
)
# More of them, looked for as literals of their own (cheaper than more first letters in _PROVIDER_HINT)
LITERAL_PREFIXES = (
    "tfp_",  # Typeform
    "sgp_",  # Sourcegraph
    "p8e-",  # Adobe
    "fm1r_",  # Fly.io macaroons without their `FlyV1 ` scheme
    "fm1a_",
    "fm2_",
)
# Prefixes of capitals alone, then a body of letters and digits (base64 for Bedrock): no `_`, `-`
# or dot, so the pre-filter finds them as any random token (20 in a row, or base64 with `+`, `/`).
CAPITAL_PREFIXES = (
    "EZAK",  # EasyPost
    "EZTK",
    "LTAI",  # Alibaba Cloud access key id
    "ATBB",  # Bitbucket app password
    "ABSKQmVkcm9ja0FQSUtleS",  # Amazon Bedrock API key: `ABSK` and base64 of `BedrockAPIKey-`
)

# Whole shapes of one provider's tokens (public token formats).
# (Each but the hex ones starts with a literal of its own, in _PROVIDER_HINT.)
HEX_SHAPES = (
    r"[0-9a-f]{32}-us[0-9]{1,2}",  # Mailchimp
    r"[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8}",  # Mailgun
    r"AA[0-9a-f]{40}-NRMA",  # New Relic mobile app token
)
# A hex body with its provider's mark at the end (`…FFFFNRAL`: New Relic license key)
HEX_SUFFIXED = (r"[0-9a-f]{32}[0-9A-Fa-f]{4}NRAL",)
PROVIDER_SHAPES = (
    r"A{20,24}[A-Za-z0-9%]{30,}",  # Twitter bearer
    r"(?:pat|sat)\.[\w\-]{20,24}\.[\w\-]{20,26}\.[\w\-]{18,22}",  # Harness
    r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}",  # Doppler
    r"dt0[a-z][0-9]{2}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}",  # Dynatrace
    r"[ps]k\.[A-Za-z0-9]{50,}\.[\w\-]{20,}",  # Mapbox
    r"A3-[A-Z0-9]{6}-[A-Z0-9]{5,6}-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}",  # 1Password secret key
    r"dapi[0-9a-f]{32}(?:-[0-9])?",  # Databricks
    r"SK[0-9a-f]{32}",  # Twilio API key
    r"sm_(?:pat|aat|sat)_[A-Za-z0-9]{16}",  # SettleMint
    r"[A-Za-z0-9]{14}\.atlasv1\.[\w\-=]{60,70}",  # Terraform Cloud
    r"SG\.[\w\-]{22}\.[\w\-]{43}",  # SendGrid
    r"v1\.0-[0-9a-f]{24}-[0-9a-f]{146}",  # Cloudflare origin CA
    r"pat[A-Za-z0-9]{14}\.[0-9a-f]{64}",  # Airtable
    r"pscale_(?:tkn|pw|oauth)_[\w=.\-]{32,64}",  # PlanetScale (`=` in the body too)
)


def _prefixed(prefixes: tuple[str, ...]) -> re.Pattern[str]:
    """A token that starts with one of `prefixes`, whatever its body (16 or more characters, 12 of
    them before any `=`, `+` or `/`, or base64 from the start: 20 or more); after a prefix of
    lowercase letters, a digit or a capital."""
    return re.compile(
        r"(?<![\w.\-])(?:(?:"
        + "|".join(re.escape(p) for p in prefixes if re.search("[0-9A-Z]", p))
        + r")|(?:"
        + "|".join(re.escape(p) for p in prefixes if not re.search("[0-9A-Z]", p))
        + r")(?=[\w\-.]*[0-9A-Z]))(?=[\w\-.]{12}|[A-Za-z0-9+/]{20})[\w\-.=+/]{16,}"
    )


# (kind, pattern, check, needs). check: what the match must also be: "" nothing more, "random"
# its group 1 looks random (a prefix shared by many providers), "not-digest" its group 1 (a prefix)
# does not name a digest or an id. needs: characters one of which the pattern needs on the line
# (with a run of 16 token characters), or literals (longer than one character) one of which it
# needs, whatever else is on the line; None: a literal of _PROVIDER_HINT (cheap tests that skip most
# patterns on most lines).
_ANY_SEP, _DASH, _DOT = ("_", "-"), ("-",), (".",)
# a JWT's header (base64 of `{"alg":`, `{"typ":`): a token whatever its payload looks like
_JWT_HEADER = r"eyJ(?:hbGciOi|0eXAiOi)"
# A private key's DER encoding, base64, as its first line starts (PKCS#1 RSA, PKCS#8, SEC1 EC, PKCS#8
# Ed25519): a key's body on one line, without its BEGIN line. (A public key's starts differ: no
# version number 0 or 1 after the first SEQUENCE.)
_DER_PRIVATE_KEY = ("MII", "MHcCAQEEI", "MC4CAQAw", "MIGHAgEA")
_DER_PRIVATE_KEY_START = (
    r"MII[A-Za-z0-9+/]{3}IBA(?:AKC|DANBgkqhkiG9w0BAQEFAASC)|MHcCAQEEI|MC4CAQAwBQYDK2Vw|MIGHAgEAMBMGByqGSM49AgEG"
)
_GENERIC_GATE = re.compile(r"[_\-][\w\-.]{16}")  # what the _ANY_SEP patterns need: a `_`/`-`, then 16 or more
_TOKENS: list[tuple[str, re.Pattern[str], str, tuple[str, ...] | None]] = [
    (
        "aws-access-key",
        re.compile(r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),
        "",
        None,
    ),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_\w{22,255})\b"), "", None),
    ("gitlab-token", re.compile(r"\b(?:gl[a-z]{1,6}-(?:t\d_)?[\w\-.]{20,}|GR1348941[\w-]{20,})"), "", None),
    ("slack-token", re.compile(r"\bx(?:ox[a-z]|app)[-.][\w\-.]{10,}"), "", None),
    (
        "slack-webhook",
        re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/[\w/\-]+"),  # (with its scheme or not)
        "",
        None,
    ),
    # an Azure AD (Entra) client secret: three characters, a digit, `Q~`, 31 to 34 more
    ("token", re.compile(r"(?<![\w~.\-])[\w~.\-]{3}[0-9]Q~[\w~.\-]{31,34}(?![\w~.\-])"), "", ("Q~",)),
    ("private-key", re.compile(r"(?:" + _DER_PRIVATE_KEY_START + r")[A-Za-z0-9+/]{16,}=*"), "", _DER_PRIVATE_KEY),
    ("stripe-key", re.compile(r"\b[rsw]k_(?:live|test|prod)_[A-Za-z0-9]{10,}"), "", None),
    ("openai-key", re.compile(r"\bsk-(?:[a-z]{2,10}\d{0,2}-)*[\w\-]{20,}"), "", None),
    ("google-api-key", re.compile(r"\b(?:AIza[\w\-]{35}|ya29\.[\w\-]{20,}|GOCSPX-[\w\-]{20,})"), "", None),
    # header.payload.signature; an unsigned token (alg none) ends with the second dot
    # (and the header and payload alone)
    (
        "jwt",
        re.compile(
            r"\bey[A-Za-z0-9_\-]{10,}\.ey[A-Za-z0-9_\-/\\]{10,}(?:\.(?:[A-Za-z0-9_\-/\\+]{5,}=*)?)?"
            r"|\b" + _JWT_HEADER + r"[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,}"
        ),
        "",
        None,
    ),
    # lowercase, digit-bearing prefixes of many providers: npm_, dop_v1_, shpat_, hf_, pscale_pw_…
    ("token", re.compile(r"\b(?:[a-z][a-z0-9]{1,11}[_\-]){1,3}([A-Za-z0-9][\w\-.]{15,}=*)"), "random", _ANY_SEP),
    (
        "token",
        re.compile(r"\b(?:[A-Z][A-Za-z0-9]{1,11}[_\-]){1,2}(?:[A-Z]+[_\-])?([A-Za-z0-9][\w\-.]{19,})"),
        "random",
        _ANY_SEP,
    ),
    # a short prefix and a hex body (`spu-3f10…`, `pri_0998…`, `rootly_7f1e…`): a key, unless the
    # prefix names a digest or an id (`sha256-…`, `commit_…`)
    (
        "token",
        re.compile(
            r"(?<![\w.\-])([A-Za-z]{2}[A-Za-z0-9]{0,10}[_\-](?:[A-Za-z0-9]{1,12}[_\-]){0,2})"
            r"(?=[a-f]*[0-9])(?=[0-9]*[a-f])[0-9a-f]{24,}(?![\w\-])"
        ),
        "not-digest",
        _ANY_SEP,
    ),
    # a provider's shape we know (with a digit or a capital after its start: a placeholder has none)
    (
        "token",
        re.compile(r"(?<![\w.\-])(?=[\w.\-]+[0-9A-Z])(?:" + "|".join(PROVIDER_SHAPES) + r")(?![\w\-])"),
        "",
        None,
    ),
    ("token", re.compile(r"(?<![\w.\-])(?=[\w.\-]+[0-9A-Z])(?:" + "|".join(HEX_SHAPES) + r")(?![\w\-])"), "", _DASH),
    ("token", re.compile(r"(?<![\w.\-])(?:" + "|".join(HEX_SUFFIXED) + r")(?![\w\-])"), "", ("NRAL",)),
    (
        "token",
        re.compile(r"(?<![\w.\-])(?:" + "|".join(CAPITAL_PREFIXES) + r")[A-Za-z0-9+/]{16,}=*"),
        "",
        CAPITAL_PREFIXES,
    ),
    # a Discord bot token: base64 of the bot's id, a timestamp, an HMAC
    (
        "token",
        re.compile(r"(?<![\w.\-=])[MNOA][A-Za-z0-9_\-]{23,27}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,}"),
        "",
        _DOT,
    ),
    # a provider's prefix we know, whatever the body (`shippo_live_1111…` too); a lowercase prefix
    # wants a digit or a capital in the body (a random one has some; an identifier, none)
    ("token", _prefixed(PROVIDER_PREFIXES), "", None),
    ("token", _prefixed(LITERAL_PREFIXES), "", LITERAL_PREFIXES),
    # an Airtable OAuth access token; a Microsoft Entra ID refresh token
    ("token", re.compile(r"(?<![\w.\-])oaa[A-Za-z0-9]{14}\.v1\.[\w\-]{20,}"), "", (".v1.",)),
    ("token", re.compile(r"(?<![\w.\-])[01]\.A[\w\-]{40,}\.(?:[0-9]\.)?Ag[\w\-]{20,}"), "", (".Ag",)),
]
# The patterns by what they need, in order (a cheap test skips most of them on most lines): a literal
# of _PROVIDER_HINT; a `_` or `-` then 16 more; a character (with a run of 16); a literal of their
# own, whatever else is on the line (most lines hold none, nor a run of 16)
_BY_HINT = [t for t in _TOKENS if t[3] is None]
_BY_SEPARATOR = [t for t in _TOKENS if t[3] is _ANY_SEP]
_BY_CHARACTER = [(k, p, c, n) for k, p, c, n in _TOKENS if n is not None and n is not _ANY_SEP and len(n[0]) == 1]
_BY_LITERAL = [(k, p, c, n) for k, p, c, n in _TOKENS if n is not None and len(n[0]) > 1]
_TOKEN_LITERAL = re.compile("|".join(re.escape(literal) for t in _BY_LITERAL for literal in t[3]))
# A literal of each pattern that needs one (of each shape, in order), grouped by first character
# (the regex engine tries every alternative at every position: 20 groups cost less than 80 words).
_HINT_PIECES = [
    "A3T",
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "AGPA",
    "AIDA",
    "AROA",
    "ANPA",
    "ANVA",
    "AIPA",
    r"gh[pousr]_",
    "github_pat_",
    r"gl[a-z]{1,6}-",
    "GR1348941",
    r"xox[a-z][-.]",
    r"xapp[-.]",
    r"hooks\.slack\.com",
    r"k_(?:live|test|prod)_",
    "sk-",
    "AIza",
    r"ya29\.",
    "GOCSPX-",
    r"ey[\w\-]{10,}\.ey",
    _JWT_HEADER,
    "AAAAAAAAAAAAAAAAAAAA",
    r"pat\.",
    r"sat\.",
    r"dp\.",
    "dt0",
    r"k\.",
    "A3-",
    "dapi",
    "SK",
    "sm_",
    r"\.atlasv1\.",
    r"SG\.",
    r"v1\.0-",
    r"pat[A-Za-z0-9]{14}\.",
    "pscale_",
    *(re.escape(p) for p in PROVIDER_PREFIXES),
]
_PROVIDER_HINT = re.compile(
    "|".join(
        re.escape(first)
        + "(?:"
        + "|".join(piece[len(re.escape(first)) :] for piece in _HINT_PIECES if piece.startswith(re.escape(first)))
        + ")"
        for first in dict.fromkeys(p[0] if p[0] != "\\" else p[1] for p in _HINT_PIECES)
    )
)
_DIGEST_PREFIX = re.compile(
    r"(?i)(?:^|[_\-])(?:sha\d*|md\d|hash|digest|sum|checksum|crc\d*|blake\w*|etag|commit|rev|revision|git|hg|id|uuid"
    r"|guid|build|blob|tree|object|obj|file|cache|fingerprint|fp|hex|test|sig|nonce|salt|v\d+)[_\-]"
)

# Names that say a value is secret (the name ends with one of these words, perhaps then `_base`,
# `_value`…: `db_password`, `apiToken`, `secret_key_base`, `_authToken`), and names that only may
# (their value is secret if it is random: `stripe_key`, `salt`)
_SECRET_END = re.compile(
    r"""(?ix)(?:pass(?:word|wd|phrase)|^pass|_pass|pwd|secret|token|api[_.\-]?key|apikey|access[_.\-]?key
    |private[_.\-]?key|secret[_.\-]?key|credentials?|[_.\-]auth|authorization|bearer|session[_.\-]?key
    |signing[_.\-]?key|encryption[_.\-]?key|master[_.\-]?key|conn(?:ection)?[_.\-]?str(?:ing)?|secret[_.\-]?id)
    (?:[_.\-]?(?:base|values?|str|string|b64|base64|hex|bytes|enc|encrypted|plain|text|\d+))?$"""
)
_WEAK_END = re.compile(
    r"(?i)(?:key|salt|dsn|hmac|seed|license|sig|signature|pin|cred|auth|session)(?:[_.\-]?(?:value|str|\d+))?$"
)
_KEY_NAME = re.compile(r"(?i)key(?:[_.\-]?(?:value|str|\d+))?$")
_AUTH_NAME = re.compile(r"(?i)auth$")
_HEX_KEY = re.compile(r"[0-9a-fA-F]+")
MIN_HEX_KEY = 32  # hex assigned to a `…key` name: a key of 128 bits or more
_HINTS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "bearer",
    "cred",
    "conn",
    "salt",
    "dsn",
    "hmac",
    "seed",
    "licen",
    "sig",
    "pin",
    "session",
)
# Hints that are common inside ordinary words (`connect`, `assign`, `mapping`, `sessions`) count only
# where a name ending as a secret's would: `conn…str`, `…sig`, `…signature`, `…pin`, `…session`.
_WEAK_SUFFIX = r"(?:[_.\-]?(?:value|str|\d+))?(?![\w.\-])"
_HINT_AT = {
    "conn": re.compile(r"conn(?=[\w.\-]{0,12}str)"),
    "sig": re.compile(r"sig(?:nature)?" + _WEAK_SUFFIX),
    "pin": re.compile("pin" + _WEAK_SUFFIX),
    "session": re.compile("session" + _WEAK_SUFFIX),
}
_HINT_WORD = re.compile("|".join(_HINT_AT[h].pattern if h in _HINT_AT else h for h in _HINTS))
_NAME_RUN = re.compile(r"[A-Za-z0-9_.\-$@]*")  # the characters of a name, found backwards from a hint in it
# name, then perhaps a type (`var apiToken string =`, `password: String =`), then an operator
_ASSIGN = re.compile(
    r"""(?P<name>[A-Za-z_$@][\w.\-]*)["'\]]?(?:[ \t]*:?[ \t]*(?P<typ>[\w<>\[\]]{1,40})(?=[ \t]*=))?[ \t]*"""
    r"""(?P<op>:{1,3}=|\?=|\.=|\|\|=|=>|==?|:|,|-(?=[ \t]*["'`]))[ \t]*(?P<q>["'`]?)"""
)
_QUOTED = {'"': re.compile(r'((?:\\.|[^"\\])*)"'), "'": re.compile(r"((?:\\.|[^'\\])*)'"), "`": re.compile(r"([^`]*)`")}
_UNQUOTED = re.compile(r"[^\s\"'`&;,<>(){}\[\]]+")
_UNQUOTED_YAML = re.compile(r"[^\s\"'`#,{}\[\]](?:[^\s\"'`#]*[^\s\"'`#,}\]])?")  # `password: Tr0ub4dor&3x`
# what is not a secret although a secret name holds it: references, templates, types, code
_NOT_VALUE = re.compile(
    r"""(?ix)^(?:\$[\w{(]|.*\{\{|.*\$\{|.*\{\d*\}|.*%[(sdr]|<[\w\-]+>$|\*{3,}|x{4,}|\.{3}|
    (?:none|null|nil|true|false|undefined|empty|required|optional|your[_\-]?\w*|string|str|bytes|int|bool|number|any|object
    |pass|password|passwd|pwd|secret|token)$)"""
)
_XML_ELEMENT = re.compile(r"<([A-Za-z_][\w.\-:]*)(?:[ \t][^<>]*)?>([^<>]+)</\1>")
_VALUE_END = re.compile(r"\s*(?:$|[#;,&}\])\"'\\]|//|/\*|--)")
_CODE_VALUE = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:\(|\[|$)")
_HAS_OTHER = re.compile(r"[^A-Za-z_]")

_TOKEN_GATE = re.compile(r"[\w\-./:]{16}")  # every token shape is at least this long: most lines are not
# A random token: letters, digits, `_` and `-` (and the `=` padding of url-safe base64)
_LONG_TOKEN = re.compile(r"(?<![\w.\\/+=-])[A-Za-z0-9_\-]{20,}={0,2}(?![\w+/=-])")
# a long one after a dot (`sl.4ihq…`, `…uau.kqvu….rpoD0siI…`): an attribute name that long is words
_DOTTED_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]{24,})(?![\w+/=-])")
# one in the standard base64 alphabet, with a `+` or `/` (an AWS secret access key, an Azure account
# key): random_looking tells it from data (runs of zero or 0xff bytes), base64 of text, a path of words
_BASE64_RUN_GATE = re.compile(r"[A-Za-z0-9+/]{20}")
_BASE64_TOKEN = re.compile(r"(?<![\w.\\/+=-])[A-Za-z0-9+/]{20,}={0,2}(?![\w.\\/+=-])")
_URL_PASSWORD = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@\"'<>]*:([^\s@/\"'<>]+)@")
_AUTH_HEADER = re.compile(
    r"(?i)\b(?:authorization[\"']?\s*[:=]\s*[\"']?(?:basic|bearer|token|digest|negotiate)?|bearer|basic(?=\s+[A-Za-z0-9+/]{12,}))\s+([\w\-.~+/]{8,}=*)"
)
_CURL_USER = re.compile(r"""(?:\s|^)(?:-u|--user|--proxy-user)(?:=|[ \t]+)["']?[^\s:"']*:([^\s"']+)""")
_NETRC = re.compile(
    r"(?i)(?:^|\s)(?:password|passwd)[ \t]+(?!=|:)([^\s\"']{3,})(?<![.,:;])(?=\s*$|\s+(?:account|machine|login|macdef|default)\b)"
)


# Letter pairs common in English words and identifiers; random letters hit these far less often.
_COMMON_PAIRS = frozenset(
    "th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de hi ri ro "
    "ic ne ea ra ce li ch ll be ma si om ur ca el ta la ns di fo ho pe ec pr no ct us ac ot il tr ly nc et ut ss so "
    "rs un lo wa ge ie wh ee wi em ad ol rt po we na ul ni ts mo ow pa im mi ai sh ir su id os iv ia am fi ci vi pl "
    "ig tu ev ld ry mp fe bl ab ty op ex ke fr oo av ag if ap gr od bo sp rd do uc bu ei ov by rm ep tt oc fa ef cu "
    "rn sc gi da cr cl du ga qu ue ff ba ey ls va um pp ua up lu go ht ru ug ds lt pi rc rr eg au ck ew mu br bi pt "
    "ak pu ui rg ib tl ny ki rk ys ob mm fu ph og ms ye ud mb ip ub oi rl gu dr hr cc wn nu yp pt fl sy tp xt ize".split()
)
WORDLIKE_SHARE = 0.6  # of letter pairs common in words: a name made of words, not a random token
WORD_RUN = 2.8  # the mean length of a name's runs of letters (`Name`, `HTTP`) and digits; random tokens: about 2
_RUNS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _wordlike(s: str) -> bool:
    """Made of words: letter pairs common in words, and runs of letters or digits long enough to be
    words (a random token switches between letters, capitals and digits every two characters or so)."""
    runs = _RUNS.findall(s)
    pairs = [p for run in runs for p in (run[i : i + 2].lower() for i in range(len(run) - 1)) if p.isalpha()]
    return (
        len(pairs) >= 4
        and sum(p in _COMMON_PAIRS for p in pairs) >= WORDLIKE_SHARE * len(pairs)
        and sum(map(len, runs)) >= WORD_RUN * len(runs)
    )


# `user:password`, or a key with its kind in front (`private_o6S9…`)
_USER_PASSWORD = re.compile(r"[^:\s]{1,64}:(\S{8,})|[A-Za-z]{2,16}[_\-](\S{12,})")


def _credential_pair(text: str) -> bool:
    """Text that is a credential although base64 of text is mostly a test vector: `user:password`
    with a random password (a Basic or a Docker credential), a random key with its kind in front."""
    m = _USER_PASSWORD.fullmatch(text)
    if m is None:
        return False
    secret = m.group(1) or m.group(2)
    return random_looking(secret, MIN_KEYED_RANDOM, True) or (
        len(secret) >= 16 and _HEXISH.fullmatch(secret) is not None and any(c.isdigit() for c in secret)
    )


def _decodings(s: str) -> Iterator[tuple[int, bytes]]:
    """What base64 `s` decodes to from each of its first four characters (a piece of a longer
    value may start at any alignment), standard or url-safe: (characters skipped, bytes)."""
    body = s.rstrip("=")
    alt = b"-_" if ("-" in s or "_" in s) else None
    for skip in range(4):
        part = body[skip:]
        try:
            yield skip, base64.b64decode(part[: len(part) // 4 * 4], altchars=alt, validate=True)
        except (binascii.Error, ValueError):
            continue


def _decodes_to_data(s: str) -> bool:
    """Base64 (of any alignment) of structured binary data: a font, an image, a table of numbers has
    many zero bytes, a binary plist or a font's names much ASCII text between them; a key is random
    bytes, with one zero byte in 256 and a printable ASCII character in 2.7."""
    for _, raw in _decodings(s):
        zeros = raw.count(0)
        if zeros >= 3 and zeros >= ZERO_BYTE_SHARE * len(raw):
            return True
        if len(raw) >= MIN_ASCII_BYTES and len(raw.translate(None, _NOT_ASCII_TEXT)) >= ASCII_SHARE * len(raw):
            return True
    return False


def _decoded_text(s: str) -> str | None:
    """The text that base64 (of any alignment: a piece of a longer value) decodes to, if it is text
    (a test vector): UTF-8, or letters and spaces of an 8-bit character set. "" if the text starts
    inside the value (not whole: no credential to look for in it)."""
    for skip, raw in _decodings(s):
        text = raw.decode("utf-8", "replace")  # a piece may cut a character in two: one \ufffd
        if text and sum(c.isprintable() and c != "\ufffd" or c in "\t\r\n" for c in text) >= PRINTABLE_SHARE * len(
            text
        ):
            return text if skip == 0 else ""
        text = raw.decode("latin-1")  # text in an 8-bit character set (Latin-1, KOI8-R): letters and spaces
        if len(text) >= MIN_8BIT_TEXT and sum(c.isalpha() or c == " " for c in text) >= PRINTABLE_SHARE * len(text):
            return text if skip == 0 else ""
    return None


# The start of a file of a known format, base64: gzip, PNG, GIF, JPEG, PDF, ZIP, a gettext catalogue
# (either byte order), a binary plist, XML. Base64 that starts so is that file, not a key.
_FILE_MAGIC = ("H4sI", "iVBORw0KGgo", "R0lGOD", "/9j/", "JVBERi0", "UEsDB", "3hIElQ", "lQSW3g", "YnBsaXN0", "PD94bWw")
_KEY_BODY_NOISE = re.compile(r"""[\s"',]|\\n""")


def not_a_key_body(run: str) -> bool:
    """A run of base64 lines that is not a private key's body: a file of a known format, or text."""
    body = _KEY_BODY_NOISE.sub("", run)
    return body.startswith(_FILE_MAGIC) or _decoded_text(body) is not None


_PARTS = re.compile(r"[_\-.]")
# a licence or product key: four or more groups of capitals and digits, all of one length
# (`D5OZWF8-QBDDBEL-14Z7B49-AHZ06BF`); random_looking decides whether their characters are random
_KEY_GROUPS = re.compile("|".join(f"[A-Z0-9]{{{n}}}(?:-[A-Z0-9]{{{n}}}){{3,}}" for n in range(5, 9)))
_HEXISH = re.compile(r"[0-9a-fA-F\-]*")
_PREFIXED_HEX = re.compile(r"[A-Za-z][A-Za-z0-9]{0,11}[_\-:.]+[0-9a-fA-F\-]{16,}")
_CLASS_OF = str.maketrans(
    {
        chr(c): "a" if chr(c).islower() else "A" if chr(c).isupper() else "0" if chr(c).isdigit() else "_"
        for c in range(128)
    }
)
_SAME_CLASS_RUN = re.compile(r"(.)\1*")


def _changes(classes: str) -> float:
    """How often the class of character changes from one to the next (aB3x: 1.0; someName: 0.14)."""
    return (len(_SAME_CLASS_RUN.findall(classes)) - 1) / max(1, len(classes) - 1)


@lru_cache(maxsize=LINE_CACHE_SIZE)  # an identifier recurs on many lines
def random_looking(s: str, min_len: int = MIN_RANDOM_LEN, named: bool = False) -> bool:
    """A token no person typed: long, letters and digits mixed, high entropy, and not a hex digest,
    a UUID, an identifier made of words, or base64 of text (a test vector). `named`: a name next to
    it says it may be a key, so fewer changes of letter class and less entropy will do
    (`wdvnousa87acfxp9ioasrea4tbeasrfa`)."""
    core = s.strip("=-_+/")
    if len(core) < min_len or core.startswith(("0x", "xn--", *_FILE_MAGIC)) or "AAA" in core or "///" in core:
        return False  # a hex number, a punycode name, a file, binary data (runs of zero or 0xff bytes)
    parts = _PARTS.split(core)
    if len(parts) >= 3 and max(map(len, parts)) < 10 and not _KEY_GROUPS.fullmatch(core):
        return False  # a compound name: test_pdb_issue_gh_94215, foo-0.1-1.noarch
    # each character's class: a lower, A upper, 0 digit, _ other
    classes = (
        core.translate(_CLASS_OF)
        if core.isascii()
        else "".join("a" if c.islower() else "A" if c.isupper() else "0" if c.isdigit() else "_" for c in core)
    )
    digits = classes.count("0")
    letters = sum(c.isalpha() for c in core) if not core.isascii() else classes.count("a") + classes.count("A")
    if letters < 4 or _HEXISH.fullmatch(core) or _PREFIXED_HEX.fullmatch(core):
        return False  # hex: a digest, an id (with its kind in front: `sha256-…`, `commit_…`; see _TOKENS)
    if digits < 2 and not ("A" in classes[1:] and "a" in classes):
        return False
    # classes change often in random text (aB3x), seldom in words (someName_v2)
    mixed_case = "a" in classes and "A" in classes
    if (
        _changes(classes) < (0.12 if named else 0.25 if mixed_case or len(core) < SINGLE_CASE_LONG else 0.15)
        or _entropy(core) < _entropy_needed(len(core), named, mixed_case)
        or _wordlike(core)
        or _in_order(core)  # the alphabet (`AaBbCcDdEeFf…`, `abcdef123456`): a sample, not a key
    ):
        return False
    text = _decoded_text(s)
    if text is not None:
        return _credential_pair(text)  # base64 of text: a test vector, unless it is `user:password`
    return not _decodes_to_data(s)


def _in_order(s: str) -> bool:
    """Mostly in alphabet order: most characters are the one before or the next (`AaBbCc`, `0123abcd`)."""
    low = s.lower()
    steps = sum(0 <= ord(b) - ord(a) <= 1 for a, b in zip(low, low[1:]))
    return steps >= IN_ORDER_SHARE * (len(low) - 1)


def _entropy_needed(n: int, named: bool, mixed_case: bool) -> float:
    """The entropy (bits per character) a random token of `n` characters has but words seldom reach.
    A token of one case and digits (36 symbols) has less than one of both cases (62): for those the
    bar is about what 999 in 1,000 random strings of its alphabet and length clear."""
    if named:
        return min(3.5, math.log2(n) - 0.7)
    if mixed_case:
        return min(4.0, math.log2(n) - 0.7)
    return min(3.7, max(3.5, math.log2(n) - 1.0))


def _keyed_value(name: str, value: str) -> bool:
    """A value that is secret under a name that only may say so (`api_key`, `auth`, `session`):
    random, or a key's hex (under a `…key` name a hex string is a key, not a digest), or base64 of
    `user:password` (`"auth": "…"` in a Docker config)."""
    return (
        random_looking(value, MIN_KEYED_RANDOM, True)
        or len(value) >= MIN_HEX_KEY
        and _HEX_KEY.fullmatch(value) is not None
        and _KEY_NAME.search(name) is not None
        or _AUTH_NAME.search(name) is not None
        and _basic_credentials(value)
    )


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
    starts, backward = set(), line[::-1]
    for hint in _HINT_WORD.finditer(lower):  # (two hints that overlap are in the same name)
        at = hint.start()
        name = _NAME_RUN.match(backward, len(line) - at) if at <= len(line) else None
        starts.add(at - name.end() + name.start() if name else at)
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
        quoted_name = line[m.end("name") : m.end("name") + 1] in ('"', "'")
        if (
            op == "=="
            or op == ","
            and not (quote and quoted_name and (name.isupper() or "-" in name))
            or op == "-"
            and not (quote and strong)
        ):
            continue  # `f(password, x)`, `token == "async"`; but `setenv("DB_PASSWORD", "x")`,
            # `header("X-Api-Key", "x")`, `token - 'x'` count
        span = _value(line, m.end(), quote, op)
        if span is None:
            continue
        value = line[span[0] : span[1]]
        if (
            len(value) < MIN_SECRET_VALUE
            or _NOT_VALUE.match(value)
            or value.startswith("<redacted:")
            or len(set(value)) == 1
            or re.fullmatch(r"\d+(?:\.\d+){2,}", value)
        ):  # a version, an address, an OID
            continue
        if op in (",", "-") and (
            value.isalpha()
            and len(value) < 8
            or re.fullmatch(r"[A-Za-z_][\w\-]*", value)
            and (_SECRET_END.search(value) or _WEAK_END.search(value))
        ):
            continue  # a word, a list of names: `("Proxy-Authorization", "FooBar")`, `("password", "secret")`
        if not strong:
            if _keyed_value(name, value):
                found.append((*span, "secret"))
            continue
        after = line[span[1] : span[1] + 1]
        rest = line[span[1] + bool(quote) :]
        if quote and (value != value.strip() or re.match(r"\s*[+.%]", rest)):
            continue  # a piece of a longer string: `"Basic " + auth`, `'{0}:{1}'.format(…)`
        if not quote and not _VALUE_END.match(rest):
            continue  # words follow: a sentence (`password: password to use`), not a config value
        if not quote:
            if op == ":" and (re.match(r"[A-Z]\w*$|[a-z]+\[", value) or re.match(r"\s*[=,)]", line[span[1] :])):
                continue  # a type annotation (`token: str = ""`, `password: Secret`)
            if _CODE_VALUE.match(value) and (after in ("(", "[") or "." in value.strip(".")):
                continue  # `token = tokens[0]`, `secret = os.urandom(16)`, `pwd = self.pwd`
            if (
                (op in ("=", ":=", "=>") or quoted_name)
                and _CODE_VALUE.match(value)
                and not _HAS_OTHER.search(value)
                and not (name.isupper() or line.lstrip().startswith(("-", "export ")))
                and line[m.start("name") - 1 : m.start("name")] not in ("&", "?", ";")
            ):
                continue  # `password = pwd`: a variable, unless the name is an environment variable's
                # or a parameter of a URL or a connection string (`?password=x`, `;Password=x`)
        elif " " in value.strip() and not random_looking(value.replace(" ", ""), MIN_KEYED_RANDOM):
            continue  # a sentence: a prompt or a message, not a credential
        found.append((*span, "password"))
    return found


# What every rule needs on its line, looked for once over the whole text with C-speed primitives
# (`str.find`, literal-prefixed patterns, `bytes.translate`), so that the lines no rule could match
# (most lines of code) cost no Python work at all. A superset: it must accept every line on which
# `scan_line` could find something (a test compares redaction with and without it).
_GATE_LITERALS = [
    re.compile(p)
    for p in (
        # a provider's prefix whose token the random-run test below may miss (a body of lowercase
        # letters, a short one, dots); `AIza`, `ya29.`, `GOCSPX-`, `GR1348941` tokens it never misses
        r"gh[pousr]_",
        "github_pat_",
        r"gl[a-z]{1,6}-",
        r"xox[a-z][-.]",
        r"xapp[-.]",
        r"hooks\.slack\.com",
        r"k_(?:live|test|prod)_",
        "sk-",
        r"ey(?:[\w\-]{10,}\.ey|J(?:hbGciOi|0eXAiOi))",  # a JWT (a header that names its algorithm: any payload)
        r"AT[AC]TT",
        r"hv[sbr]\.",
        "pscale_",
        r"://[^\s:/@\"'<>]*:[^\s@/\"'<>]+@",  # scheme://user:password@
        r"-(?:u|-user|-proxy-user)(?:=|[ \t])",  # curl -u
    )
]
# Literals looked for with str.find (a pattern that starts with a class costs ten times as much):
# an Azure AD client secret's mark (`~` ends a run)
_GATE_STRINGS = ("Q~",)
_GATE_WORDS = ("basic",)  # a header: no operator
_GATE_WORDS_IN_HINTS = ("authorization", "bearer", "password", "passwd")  # nor these (a header, a .netrc line)
_GATE_OPERATOR = re.compile(r"[:=,>]|-[ \t]*[\"'`]")  # every assignment's operator holds one of these; XML: `>`
# A random token is a run of 16 or more of [A-Za-z0-9_.-] (or letters outside ASCII) with a digit
# or a capital after its first character (`random_looking` wants two digits or mixed case).
_WORD_RUN = bytes(
    ord("w") if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "_.-?") else ord(" ") for c in range(256)
)
_WORD_RUN_16, _WORD_RUN_20 = b"w" * 16, b"w" * 20
# Those tokens have a `_` or `-` (`npm_…`, `glpat-…`), or 20 characters in a row without a dot
# (AWS ids, a long random token); a provider's token that has neither is a literal above.
_WORD_RUN_UNDOTTED = bytes(
    ord("w") if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "_-?") else ord(" ") for c in range(256)
)
_RANDOM_MARK = re.compile(r"[0-9A-Z\x80-\U0010ffff]")


def candidate_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of the lines of `text` on which some rule may match, in order."""
    lower = text.lower()
    if len(lower) != len(text):  # a letter whose lower case is longer (İ): no gate, every line
        return every_line(text)
    hits: list[int] = []
    for pattern in _GATE_LITERALS:
        hits.extend(m.start() for m in pattern.finditer(text))
    for literal in _GATE_STRINGS:
        at = text.find(literal)
        while at >= 0:
            hits.append(at)
            at = text.find(literal, at + 1)
    for word in _GATE_WORDS:
        at = lower.find(word)
        while at >= 0:
            hits.append(at)
            at = lower.find(word, at + 1)
    named = []
    for word in _HINTS:
        at, only = lower.find(word), _HINT_AT.get(word)
        while at >= 0:
            if only is None or only.match(lower, at):
                named.append(at)
            at = lower.find(word, at + 1)
    end = taken = -1
    for at in sorted(named):  # a hint word, then an operator after it on its line
        if at <= taken:
            continue  # its line is in already
        if at > end:
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
        if _GATE_OPERATOR.search(text, at, end) or lower.startswith(_GATE_WORDS_IN_HINTS, at):
            hits.append(at)
            taken = end
    ascii = text.encode("ascii", "replace")  # a letter outside ASCII: `?`, a word character
    runs, undotted = ascii.translate(_WORD_RUN), ascii.translate(_WORD_RUN_UNDOTTED)
    at = runs.find(_WORD_RUN_16)
    while at >= 0:
        end = runs.find(b" ", at)
        end = len(runs) if end < 0 else end
        if _RANDOM_MARK.search(text, at + 1, end) and (
            text.find("_", at, end) >= 0 or text.find("-", at, end) >= 0 or undotted.find(_WORD_RUN_20, at, end) >= 0
        ):
            hits.append(at)
        at = runs.find(_WORD_RUN_16, end)
    if "+" in text or "/" in text:  # a base64 token (`+` and `/` end a run above)
        b64 = ascii.translate(_BASE64_RUN)
        at = b64.find(_BASE64_RUN_20)
        while at >= 0:
            end = b64.find(b" ", at)
            end = len(b64) if end < 0 else end
            if text.find("+", at, end) >= 0 or text.find("/", at, end) >= 0:
                hits.append(at)
            at = b64.find(_BASE64_RUN_20, end)
    spans, last = [], -1
    for at in sorted(hits):
        if at <= last:
            continue
        start = text.rfind("\n", 0, at) + 1
        last = text.find("\n", at)
        last = len(text) if last < 0 else last
        spans.append((start, last))
    return spans


_BASE64_RUN = bytes(
    ord("b") if chr(c).isascii() and (chr(c).isalnum() or chr(c) in "+/") else ord(" ") for c in range(256)
)
_BASE64_RUN_20 = b"b" * 20


def has_base64_run(text: str, length: int) -> bool:
    """Whether `text` holds `length` base64 characters in a row (a line of a key's body)."""
    return text.encode("ascii", "replace").translate(_BASE64_RUN).find(b"b" * length) >= 0


def every_line(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for line in text.split("\n"):
        spans.append((start, start + len(line)))
        start += len(line) + 1
    return spans


def _xml_values(line: str) -> list[tuple[int, int, str]]:
    """The text of an element whose name says secret: `<password>x</password>` (Jenkins, Maven, .NET)."""
    found = []
    for m in _XML_ELEMENT.finditer(line):
        name, value = m.group(1).rsplit(":", 1)[-1], m.group(2).strip()
        if len(value) < MIN_SECRET_VALUE or _NOT_VALUE.match(value):
            continue
        if _SECRET_END.search(name) or _WEAK_END.search(name) and random_looking(value, MIN_KEYED_RANDOM):
            start = line.index(value, m.start(2))
            found.append((start, start + len(value), "password"))
    return found


@lru_cache(maxsize=LINE_CACHE_SIZE)
def scan_line(line: str) -> tuple[tuple[int, int, str], ...]:
    """The credentials on one line: (start, end, kind), sorted, not overlapping."""
    found: list[tuple[int, int, str]] = []
    if _TOKEN_GATE.search(line):
        gate, provider = True, _PROVIDER_HINT.search(line) is not None
    else:
        gate = provider = False
    generic = gate and _GENERIC_GATE.search(line) is not None
    tokens = [
        *(_BY_HINT if provider else ()),
        *(_BY_SEPARATOR if generic else ()),
        *((t for t in _BY_CHARACTER if any(c in line for c in t[3])) if gate else ()),
    ]
    if _TOKEN_LITERAL.search(line):  # (on most lines: none)
        literals = frozenset(_TOKEN_LITERAL.findall(line))
        tokens += [t for t in _BY_LITERAL if not literals.isdisjoint(t[3])]
    for kind, pattern, check, _ in tokens:
        for m in pattern.finditer(line):
            if (
                not check
                or check == "random"
                and random_looking(m.group(1), MIN_KEYED_RANDOM)
                or check == "not-digest"
                and not _DIGEST_PREFIX.search(m.group(1))
            ):
                found.append((m.start(), m.end(), kind))
    if "://" in line:
        found.extend(
            (m.start(1), m.end(1), "url-password")
            for m in _URL_PASSWORD.finditer(line)
            if not _NOT_VALUE.match(m.group(1))
        )
    lower = line.lower()
    if "auth" in lower or "bearer" in lower or "basic" in lower:
        found.extend(
            (m.start(1), m.end(1), "authorization")
            for m in _AUTH_HEADER.finditer(line)
            if random_looking(m.group(1), MIN_KEYED_RANDOM) or _basic_credentials(m.group(1))
        )
    if "-u" in line or "--user" in line or "--proxy-user" in line:
        found.extend((m.start(1), m.end(1), "password") for m in _CURL_USER.finditer(line))
    if "pass" in lower:
        found.extend(
            (m.start(1), m.end(1), "password")
            for m in _NETRC.finditer(line)
            if (lower.lstrip().startswith(("machine", "login", "password", "default")) or " login " in lower)
            and not _NOT_VALUE.match(m.group(1))
        )
    if _HINT_WORD.search(lower):
        found.extend(_assignments(line, lower))
        if "</" in line:
            found.extend(_xml_values(line))
    for m in _LONG_TOKEN.finditer(line):
        if random_looking(m.group(0)):
            found.append((m.start(), m.end(), "random"))
    if gate and "." in line:
        for m in _DOTTED_TOKEN.finditer(line):
            if random_looking(m.group(1), DOTTED_RANDOM_LEN):
                found.append((m.start(1), m.end(1), "random"))
    if ("+" in line or "/" in line) and _BASE64_RUN_GATE.search(line):
        for m in _BASE64_TOKEN.finditer(line):
            token = m.group(0)
            if (
                ("+" in token or "/" in token or token.endswith("="))
                and not (DATA_LINE[0] <= len(token) <= DATA_LINE[1] and token[-1] != "=")
                and random_looking(token)
            ):
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
    random_looking.cache_clear()
