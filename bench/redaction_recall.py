"""Redaction recall and cost: how many of secret scanners' own test secrets ai_host redacts.

The corpora are read at run time from local git mirrors (nothing of theirs is copied into this
project); each is optional:

    .venv/bin/python bench/redaction_recall.py --gitleaks /path/gitleaks.git \
        --trufflehog /path/trufflehog.git --detect-secrets /path/detect-secrets.git [--stdlib DIR]

- gitleaks: the true-positive samples of `cmd/generate/config/rules/*.go`. A small evaluator for
  the Go subset those files use (string literals, `+`, `fmt.Sprintf`, `secrets.NewSecret(regex)`
  with a seeded generator, `utils.GenerateSampleSecrets`, whose context templates are read from
  the mirror's `utils/generate.go`).
- trufflehog: `input` / `want` pairs of `pkg/detectors/**/*_test.go` (pattern tests).
- detect-secrets: `test_data/` graded by its `baseline.file` (a line and the SHA-1 of the secret),
  and the `payload, should_flag` / `content, expected_output` cases of `tests/plugins/*_test.py`.

A sample counts as redacted *in context* when its secret is gone from the redacted text; *bare*
when the secret alone, as the whole text, is redacted. Where a sample does not name its secret
(a literal gitleaks sample, a should_flag payload), its secret is taken to be its most random
token. Each corpus is also scored on its secrets only (a URL without a password, a host name, an
IP or e-mail address is wanted by some tests but is no secret) and, bare, without the classes no
rule can tell from a digest, a UUID, a number or a name (hex, digits, under 20 characters). Also
printed: false positives on ordinary code (the Python standard library, and outside its test
folders), hex digests (bare and with their algorithm), UUIDs and base64 test vectors, and the cost
of redacting 12 KB windows of six standard-library files (cold, and after a one-line edit).
Figures go in docs/security.md.
"""

from __future__ import annotations

import argparse
import ast
import base64
import collections
import hashlib
import json
import math
import os
import platform
import random
import re
import subprocess
import sys
import sysconfig
import time
import uuid
from pathlib import Path
from re import _constants as C  # noqa: N812  (the parser's opcodes, to generate from a regex)
from re import _parser as sre_parse
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ai_host import secret_rules  # noqa: E402
from ai_host.security import Redactor  # noqa: E402

WINDOW_BYTES = 12 * 1024
FP_PER_LINES = 50_000
MAX_SECRET = 160  # the longest secret looked for on a line of detect-secrets' test data
TOKEN = re.compile(r"[A-Za-z0-9+/=_\-.~:]{8,}")


class Sample(NamedTuple):
    family: str
    text: str
    secret: str


def git_files(repo: str, prefix: str) -> list[str]:
    out = subprocess.run(
        ["git", f"--git-dir={repo}", "ls-tree", "-r", "--name-only", "HEAD", prefix],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


def git_show(repo: str, path: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={repo}", "show", f"HEAD:{path}"], capture_output=True, check=True
    ).stdout.decode("utf-8", "replace")


def entropy(s: str) -> float:
    counts = collections.Counter(s)
    return -sum(c / len(s) * math.log2(c / len(s)) for c in counts.values())


def likely_secret(text: str) -> str:
    """The most random-looking token of a sample that does not say which part is its secret."""
    tokens = [t.strip(".:-") for t in TOKEN.findall(text)]
    tokens = [t for t in tokens if len(t) >= 8]
    return max(tokens, key=lambda t: entropy(t) * math.log2(len(t)), default="")


# -- generating a string from a regular expression (what gitleaks' secrets.NewSecret does) ----------

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _go_to_python(rx: str) -> str:
    rx = rx.replace("[[:alnum:]]", "[a-zA-Z0-9]").replace("[:alnum:]", "a-zA-Z0-9").replace(r"\z", r"\Z")
    rx = re.sub(r"\(\?-?i\)", "", rx)
    return rx.replace("(?-i:", "(?:")


def _chars(items: list, rng: random.Random) -> str:
    pool, negate = [], False
    for op, av in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            pool.append(chr(av))
        elif op is C.RANGE:
            pool.extend(chr(c) for c in range(av[0], av[1] + 1))
        elif op is C.CATEGORY:
            pool.extend(
                {C.CATEGORY_DIGIT: "0123456789", C.CATEGORY_SPACE: " ", C.CATEGORY_WORD: _ALNUM + "_"}.get(av, _ALNUM)
            )
    if negate:
        pool = [c for c in _ALNUM if c not in pool]
    return rng.choice(pool or _ALNUM)


def _generate(parsed, rng: random.Random) -> str:
    out = []
    for op, av in parsed:
        if op is C.LITERAL:
            out.append(chr(av))
        elif op is C.NOT_LITERAL or op is C.ANY:
            out.append(rng.choice(_ALNUM))
        elif op is C.IN:
            out.append(_chars(av, rng))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, hi, sub = av
            hi = min(hi, lo + 10) if hi is C.MAXREPEAT or hi > lo + 64 else hi
            out.extend(_generate(sub, rng) for _ in range(rng.randint(lo, hi)))
        elif op is C.SUBPATTERN:
            out.append(_generate(av[-1], rng))
        elif op is C.BRANCH:
            out.append(_generate(rng.choice(av[1]), rng))
        elif op is C.CATEGORY:
            out.append(_chars([(op, av)], rng))
    return "".join(out)


def from_regex(rx: str, rng: random.Random) -> str:
    return _generate(sre_parse.parse(_go_to_python(rx)), rng)


# -- gitleaks: a tiny evaluator for the Go its rule files use to build their samples ---------------

_GO_TOKEN = re.compile(
    r"""//[^\n]*|/\*[\s\S]*?\*/|`[^`]*`|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\])'|\.\.\.|:=|[A-Za-z_][\w.]*|\d+|\S"""
)


class _Go:
    def __init__(self, templates: list[str], rng: random.Random) -> None:
        self.templates, self.rng, self.vars = templates, rng, {}

    def parse(self, src: str) -> list[Any]:
        """Every value assigned to a variable whose name starts with tps / truePositives."""
        toks = [t for t in _GO_TOKEN.findall(src) if not t.startswith(("//", "/*"))]
        found: list[Any] = []
        i = 0
        while i < len(toks) - 1:
            name = toks[i]
            if (
                re.fullmatch(r"[A-Za-z_]\w*", name)
                and toks[i + 1] in (":=", "=")
                and (i == 0 or toks[i - 1] not in (".", ","))
            ):
                try:
                    value, j = self.expr(toks, i + 2)
                except (ValueError, IndexError, KeyError, re.error, TypeError, OverflowError, StopIteration):
                    i += 1
                    continue
                self.vars[name] = value
                if name.lower().startswith(("tps", "truepositive")):
                    found.append(value)
                i = j
                continue
            i += 1
        return found

    def expr(self, t: list[str], i: int) -> tuple[Any, int]:
        v, i = self.term(t, i)
        while i < len(t) and t[i] == "+":
            w, i = self.term(t, i + 1)
            v = v + w
        return v, i

    def term(self, t: list[str], i: int) -> tuple[Any, int]:
        tok = t[i]
        if tok.startswith("`"):
            return tok[1:-1], i + 1
        if tok.startswith('"'):
            return ast.literal_eval(tok), i + 1
        if tok.isdigit():
            return int(tok), i + 1
        if tok == "[" and t[i + 1] == "]":  # []string{...}
            i += 3
            if t[i] != "{":
                raise ValueError(t[i])
            items, i = self.args(t, i + 1, "}")
            return [x for x, _ in items], i
        if t[i + 1 : i + 2] == ["("]:
            args, j = self.args(t, i + 2, ")")
            return self.call(tok, args), j
        if tok in self.vars:
            return self.vars[tok], i + 1
        raise ValueError(tok)

    def args(self, t: list[str], i: int, close: str) -> tuple[list[tuple[Any, bool]], int]:
        out = []
        while t[i] != close:
            v, i = self.expr(t, i)
            spread = t[i] == "..."
            i += spread
            out.append((v, spread))
            if t[i] == ",":
                i += 1
        return out, i + 1

    def call(self, fn: str, args: list[tuple[Any, bool]]) -> Any:
        a = [v for v, _ in args]
        size = {
            "utils.Numeric": "[0-9]",
            "utils.Hex": "[a-f0-9]",
            "utils.AlphaNumeric": "[a-z0-9]",
            "utils.AlphaNumericExtendedShort": "[a-z0-9_-]",
            "utils.AlphaNumericExtended": r"[a-z0-9=_\-]",
            "utils.AlphaNumericExtendedLong": r"[a-z0-9\/=_\+\-]",
        }
        if fn in size:
            return f"{size[fn]}{{{a[0]}}}"
        if fn == "utils.Hex8_4_4_4_12":
            return "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        if fn == "secrets.NewSecret":
            return from_regex(a[0], self.rng)
        if fn == "utils.GenerateSampleSecrets":
            return [
                Sample("", t.replace("{i}", a[0]).replace("{I}", a[0].upper()).replace("{s}", a[1]), a[1])
                for t in self.templates
            ]
        if fn == "utils.GenerateSampleSecret":
            return Sample("", f'{a[0]}_api_token = "{a[1]}"', a[1])
        if fn == "fmt.Sprintf":
            return re.sub(r"%[sdvq]", lambda m, it=iter(a[1:]): str(next(it)), a[0])
        if fn == "strings.Repeat":
            return a[0] * a[1]
        if fn == "strings.ToUpper":
            return a[0].upper()
        if fn == "append":
            out = list(a[0])
            for v, spread in args[1:]:
                out.extend(v if spread else [v])
            return out
        raise ValueError(fn)


def gitleaks(repo: str, rng: random.Random) -> list[Sample]:
    gen = git_show(repo, "cmd/generate/config/utils/generate.go")
    block = gen[gen.index("samples := map[string]string{") :]
    block = block[: block.index("\n\t}\n")]
    templates = []
    for line in block.splitlines():
        m = re.match(r"""\s*"[^"]*":\s*("(?:\\.|[^"\\])*"|`[^`]*`),""", line)
        if m:
            templates.append(ast.literal_eval(m.group(1)) if m.group(1)[0] == '"' else m.group(1)[1:-1])
    samples = []
    for path in git_files(repo, "cmd/generate/config/rules/"):
        if not path.endswith(".go") or path.endswith("_test.go"):
            continue
        family = Path(path).stem
        go = _Go(templates, rng)
        for value in go.parse(git_show(repo, path)):
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, Sample):
                    samples.append(item._replace(family=family))
                elif isinstance(item, str) and likely_secret(item):
                    samples.append(Sample(family, item, likely_secret(item)))
    return samples


# -- trufflehog: the pattern tests' inputs and the secrets they want found --------------------------


def trufflehog(repo: str, rng: random.Random) -> list[Sample]:
    samples = []
    for path in git_files(repo, "pkg/detectors/"):
        if not path.endswith("_test.go") or "integration" in path:
            continue
        src = git_show(repo, path)
        if "want" not in src or "input" not in src:
            continue
        family = path.split("/")[2]
        go = _Go([], rng)
        toks = [t for t in _GO_TOKEN.findall(src) if not t.startswith(("//", "/*"))]
        _collect_vars(go, toks)
        for i, tok in enumerate(toks):
            if tok != "input" or toks[i + 1] != ":":
                continue
            try:
                text, j = go.expr(toks, i + 2)
                k = toks.index("want", j)
                if toks[k + 1] != ":" or toks[k + 2 : k + 4] != ["[", "]"]:
                    continue
                want, _ = go.expr(toks, k + 2)
            except (ValueError, IndexError, KeyError, re.error, TypeError, OverflowError, StopIteration):
                continue
            for w in want or []:
                if not isinstance(w, str) or not isinstance(text, str):
                    continue
                secret = w if w in text else likely_secret(" ".join(p for p in re.split(r"[:;|, ]", w) if p in text))
                if secret and secret in text:
                    samples.append(Sample(family, text, secret))
    return samples


def _collect_vars(go: _Go, toks: list[str]) -> None:
    """The package's string constants and variables (`validPattern = "..."`), in order."""
    for i in range(1, len(toks) - 2):
        if re.fullmatch(r"[A-Za-z_]\w*", toks[i]) and toks[i + 1] in ("=", ":=") and toks[i - 1] not in (".", ",", ":"):
            try:
                v, _ = go.expr(toks, i + 2)
            except (ValueError, IndexError, KeyError, re.error, TypeError, OverflowError, StopIteration):
                continue
            if isinstance(v, (str, int)):
                go.vars[toks[i]] = v


# -- detect-secrets: test_data graded by its baseline, and the plugins' parametrized cases ---------


def detect_secrets(repo: str) -> list[Sample]:
    samples = []
    baseline = json.loads(git_show(repo, "test_data/baseline.file"))
    for name, found in baseline["results"].items():
        try:
            lines = git_show(repo, f"test_data/{name}").splitlines()
        except subprocess.CalledProcessError:
            continue
        for hashed in {(f["line_number"], f["hashed_secret"]) for f in found}:
            line = lines[hashed[0] - 1] if hashed[0] <= len(lines) else ""
            secret = next(
                (
                    line[a:b]
                    for a in range(len(line))
                    for b in range(min(len(line), a + MAX_SECRET), a, -1)
                    if hashlib.sha1(line[a:b].encode()).hexdigest() == hashed[1]
                ),
                None,
            )
            if secret is None and "PRIVATE KEY" in line:
                secret = "\n".join(lines[hashed[0] : hashed[0] + 2])  # the key's body
            if secret:
                text = "\n".join(lines) if "PRIVATE KEY" in line else line
                samples.append(Sample("test_data/" + Path(name).name, text, secret))
    for path in git_files(repo, "tests/plugins/"):
        if not path.endswith("_test.py"):
            continue
        for node in ast.walk(ast.parse(git_show(repo, path))):
            if not (
                isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "parametrize" and len(node.args) >= 2
            ):
                continue
            names = (
                [n.strip() for n in ast.literal_eval(node.args[0]).split(",")]
                if isinstance(node.args[0], ast.Constant)
                else []
            )
            for case in getattr(node.args[1], "elts", []):
                try:
                    values = ast.literal_eval(case)
                except ValueError:
                    continue
                if not isinstance(values, tuple) or len(values) != len(names) or not isinstance(values[0], str):
                    continue
                row = dict(zip(names, values))
                family = Path(path).stem.removesuffix("_test")
                if row.get("should_flag") is True:
                    samples.append(Sample(family, values[0], likely_secret(values[0])))
                elif isinstance(row.get("expected_output"), str) and row["expected_output"] in values[0]:
                    samples.append(Sample(family, values[0], row["expected_output"]))
    return [s for s in samples if s.secret]


# -- measuring ------------------------------------------------------------------------------------


def recall(samples: list[Sample]) -> dict[str, list[int]]:
    """family -> [samples, redacted in context, redacted bare]"""
    out: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    for s in samples:
        row = out[s.family]
        row[0] += 1
        row[1] += s.secret not in Redactor().redact(s.text)
        row[2] += s.secret not in Redactor().redact(s.secret)
    return out


# What a test corpus wants found but is no secret on its own: a URL without a password, a host
# name, an IP address, an e-mail address (trufflehog's tests list them next to the key they go
# with; detect-secrets has a plugin for public IP addresses).
NOT_SECRET = re.compile(r"""(?ix)(?:[a-z][a-z0-9+.\-]*:)?//[^\s:@/]+(?::\d+)?(?:[/?]\S*)?|jdbc:(?!.*passw)\S+
    |[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+|(?:[a-z0-9\-]+\.)+[a-z]{2,}(?::\d+)?|\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?""")
# What no rule can tell, bare, from what must never be redacted (digests, UUIDs, numbers, names):
# the goal's bare figure is also given without these.
UNREACHABLE_BARE = [
    ("hex", re.compile(r"[0-9a-fA-F]+(?:[-:.][0-9a-fA-F]+)*")),  # a digest, a UUID, an id
    ("digits", re.compile(r"[0-9\W_]+")),
    ("short", re.compile(r"[\s\S]{1,19}")),  # under 20 characters without a provider's prefix: an identifier's size
]


def bare_class(secret: str) -> str:
    return next((name for name, rx in UNREACHABLE_BARE if rx.fullmatch(secret)), "")


def report(name: str, samples: list[Sample], verbose: bool) -> None:
    rows = recall(samples)
    n = sum(r[0] for r in rows.values())
    ctx, bare = sum(r[1] for r in rows.values()), sum(r[2] for r in rows.values())
    print(
        f"\n{name}: {n} samples, {len(rows)} families; redacted in context {100 * ctx / max(n, 1):.1f} %, "
        f"bare {100 * bare / max(n, 1):.1f} %"
    )
    secrets = [s for s in samples if not NOT_SECRET.fullmatch(s.secret)]
    hits = sum(s.secret not in Redactor().redact(s.text) for s in secrets)
    print(
        f"  in context, the {len(secrets)} wanted strings that are secrets (not a URL without a password, "
        f"a host name, an e-mail address): {100 * hits / max(len(secrets), 1):.1f} %"
    )
    classes = collections.Counter(bare_class(s.secret) for s in secrets)
    reachable = [s for s in secrets if not bare_class(s.secret)]
    caught = [s for s in reachable if s.secret not in Redactor().redact(s.secret)]
    print(
        f"  bare, leaving out {', '.join(f'{k} {v}' for k, v in sorted(classes.items()) if k)} (no rule can tell them "
        f"from a digest, a UUID, a number or a name): {100 * len(caught) / max(len(reachable), 1):.1f} % of {len(reachable)}"
    )
    worst = sorted(rows.items(), key=lambda kv: (kv[1][1] + kv[1][2]) / kv[1][0])
    shown = worst if verbose else [kv for kv in worst if kv[1][1] < kv[1][0] or kv[1][2] < kv[1][0]][:25]
    if shown:
        print(f"  {'family':<28} {'n':>4} {'context':>8} {'bare':>8}")
    for fam, (k, c, b) in shown:
        print(f"  {fam:<28} {k:>4} {100 * c / k:>7.0f}% {100 * b / k:>7.0f}%")
    if verbose:
        for s in samples:
            if s.secret in Redactor().redact(s.text):
                print("  MISSED", s.family, repr(s.text[:160]))
        for s in sorted(set(reachable) - set(caught)):  # (bare, of the classes a rule can reach)
            print("  MISSED BARE", s.family, repr(s.secret[:160]))


def false_positives(stdlib: Path) -> None:
    lines = hits = 0
    outside = [0, 0]  # lines, secrets outside the test folders (tests plant credentials on purpose)
    examples = []
    for path in sorted(stdlib.rglob("*.py")):
        if "site-packages" in path.parts:
            continue
        text = path.read_text(errors="replace")
        lines += text.count("\n") + 1
        r = Redactor()
        r.redact(text)
        hits += len(r.secrets)
        rel = path.relative_to(stdlib)
        if not any("test" in part for part in rel.parts[:-1]):
            outside[0] += text.count("\n") + 1
            outside[1] += len(r.secrets)
        examples.extend(f"{rel}: {s[:60]!r}" for s in r.secrets.values())
    print(
        f"\nfalse positives on {stdlib} ({lines:,} lines): {hits} secrets found, "
        f"{hits * FP_PER_LINES / lines:.2f} per {FP_PER_LINES:,} lines; outside its test folders "
        f"{outside[1]} in {outside[0]:,} lines, {outside[1] * FP_PER_LINES / max(outside[0], 1):.2f} per {FP_PER_LINES:,}"
    )
    for e in examples:
        print("  ", e)
    rng = random.Random(1)
    negatives = {
        "hex digests": [
            getattr(hashlib, h)(str(i).encode()).hexdigest()
            for h in ("md5", "sha1", "sha256", "sha512")
            for i in range(50)
        ],
        "UUIDs": [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(200)],
        "digests with their algorithm or kind": [
            f"{p}{getattr(hashlib, h)(str(i).encode()).hexdigest()}"
            for i in range(20)
            for p, h in (
                ("sha256-", "sha256"),
                ("md5:", "md5"),
                ("sha1_", "sha1"),
                ("commit_", "sha1"),
                ("etag-", "md5"),
            )
        ],
        "base64 test vectors": [
            base64.b64encode(s.encode()).decode()
            for s in (
                "",
                "f",
                "fo",
                "foo",
                "foob",
                "fooba",
                "foobar",
                "The quick brown fox jumps over the lazy dog",
                "Man is distinguished, not only by his reason",
                "hello world",
                "Lorem ipsum dolor sit amet, consectetur",
            )
        ],
    }
    for name, values in negatives.items():
        bad = sum(
            Redactor().redact(f"{v}\nx = '{v}'\nexpected = \"{v}\"") != f"{v}\nx = '{v}'\nexpected = \"{v}\""
            for v in values
        )
        print(f"  {name}: {bad} of {len(values)} redacted")


COST_WINDOWS = [
    ("argparse.py", 0.0),
    ("unittest/case.py", 1 / 3),
    ("test/test_ssl.py", 1 / 3),
    ("typing.py", 1 / 3),
    ("email/_header_value_parser.py", 1 / 3),
    ("json/decoder.py", 0.0),
]


def _window(path: Path, at: float) -> str:
    text = path.read_text()
    start = text.find("\n", int(len(text) * at)) + 1 if at else 0
    end = text.find("\n", start + WINDOW_BYTES)
    return text[start : end if end > 0 else len(text)] + '\npassword = "correct-horse-battery"\n'


def _timed(fn: Any, batches: int = 9, reps: int = 20) -> str:
    """The fastest and the median batch's mean time of a call, in ms: on a shared machine the
    fastest is the code's own cost, the median what others' load makes of it."""
    times = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - t0) / reps * 1000)
    times.sort()
    return f"{times[0]:.3f} ms (median {times[batches // 2]:.3f})"


def load() -> str:
    """The machine's load (a shared machine makes the median slower than the fastest batch)."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} CPUs"


def cost(stdlib: Path) -> None:
    print(
        f"\ncost of redacting a window of {WINDOW_BYTES // 1024} KB (fastest and median of 9 batches of 20): cold "
        f"(no cache, every line new) / after a one-line edit (per-line cache); {load()}"
    )
    for name, at in COST_WINDOWS:
        text = _window(stdlib / name, at)
        lines = text.split("\n")

        def cold(text: str = text) -> None:
            secret_rules.clear_cache()
            Redactor().redact(text)

        edits = iter(range(10**9))

        def edit(lines: list[str] = lines) -> None:  # a keystroke: one line differs from the last call
            lines[len(lines) // 2] = f"    x = {next(edits)}"
            Redactor().redact("\n".join(lines))

        secret_rules.clear_cache()
        print(f"  {name:<32} {len(text.encode()):>6} bytes: {_timed(cold)} cold, {_timed(edit)} after an edit")
    print(f"  ({load()})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gitleaks"), ap.add_argument("--trufflehog"), ap.add_argument("--detect-secrets")
    ap.add_argument("--stdlib", default=sysconfig.get_paths()["stdlib"])
    ap.add_argument("--verbose", action="store_true", help="every family and every missed sample")
    a = ap.parse_args()
    print(f"Python {platform.python_version()}, {platform.machine()}; {load()}")
    rng = random.Random(14)
    if a.gitleaks:
        report("gitleaks (rule samples)", gitleaks(a.gitleaks, rng), a.verbose)
    if a.trufflehog:
        report("trufflehog (detector pattern tests)", trufflehog(a.trufflehog, rng), a.verbose)
    if a.detect_secrets:
        ds = detect_secrets(a.detect_secrets)
        report(
            "detect-secrets test_data (graded by its baseline)",
            [s for s in ds if s.family.startswith("test_data/")],
            a.verbose,
        )
        report("detect-secrets plugin tests", [s for s in ds if not s.family.startswith("test_data/")], a.verbose)
    false_positives(Path(a.stdlib))
    cost(Path(a.stdlib))


if __name__ == "__main__":
    main()
