"""Merge-request review plumbing: a 20-file MR (a real git repository) in the GitLab double, reviewed by
`review_merge_request` twice, with the Ollama double scripting the model (or, with --real,
llama-cpp-python serving SmolLM2-135M with constrained output).

The scripted model answers per file in turn: a quote with the right line number, a quote with a wrong
number, broken JSON that needs the repair turn, and a finding about a file that does not exist.

Figures:
  placement    findings placed on a diff line GitLab accepts / findings reported
  4xx          GitLab's 4xx answers to position-bearing requests (the goal: 0)
  parse        files whose reply parsed at the first try, and after the one repair turn
  duplicates   inline notes added by the second run of the same review (the goal: 0)
  wall time    of the first run, split GitLab / model / ours (the doubles answer at once: "ours" is
               the review's own work: parsing, redaction, prompts, placement)

Usage: .venv/bin/python bench/review.py [--real] [--files N]   (N: 20, or 4 with --real: a 135M model held
to the schema writes 10-20 tokens/s on 2 cores, and each file is reviewed twice)
Writes bench/results/review.json (review_real.json with --real). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from ai_host import config  # noqa: E402
from ai_host.endpoint import loopback_connector  # noqa: E402
from ai_host.gitlab.client import GitLabToken  # noqa: E402
from ai_host.review.run import ReviewOutcome, ReviewTarget, review_merge_request  # noqa: E402
from tests.fakes.gitlab_double import GitLabDouble  # noqa: E402
from tests.fakes.ollama_double import ModelSpec, OllamaDouble, Script  # noqa: E402
from tests.review.gitrepo import GitRepo  # noqa: E402

MODEL = "qwen2.5-coder:7b"
FILES, REAL_FILES = 20, 4
FUNCTIONS = 6
_FILE = re.compile(r"^File: (\S+)", re.MULTILINE)


def base_module(i: int) -> str:
    return "".join(
        f"def f{i}_{k}(items):\n    total = 0\n    for x in items:\n        total += x\n    return total\n\n\n"
        for k in range(FUNCTIONS)
    )


def changed_module(i: int) -> str:
    text = base_module(i)
    text = text.replace(f"def f{i}_1(items):\n    total = 0\n", f"def f{i}_1(items):\n    total = None\n", 1)
    return text.replace(
        f"def f{i}_4(items):\n    total = 0\n    for x in items:\n",
        f"def f{i}_4(items):\n    total = 0\n    for x in items[1:]:\n",
        1,
    )


def build_repo(path: Path, files: int) -> GitRepo:
    repo = GitRepo(path / "repo")
    repo.path.mkdir(parents=True)
    repo.git("init", "-q")
    repo._write({f"pkg/mod_{i:02}.py": base_module(i) for i in range(files)})
    repo.commit("base")
    repo.git("checkout", "-q", "-b", "feature")
    repo._write({f"pkg/mod_{i:02}.py": changed_module(i) for i in range(files)})
    repo.commit("feature")
    return repo


def scripted(sent: dict[str, Any]) -> list[str]:
    """The double's model: by file number, one of four behaviours; the repair turn always answers well."""
    messages = sent.get("messages") or []
    path = (_FILE.search(next(str(m["content"]) for m in messages if m.get("role") == "user")) or [None, ""])[1]
    n = int(re.sub(r"\D", "", path) or 0)
    repair = any(m.get("role") == "assistant" for m in messages)
    good = {
        "file": path,
        "anchor": "    total = None",
        "line": 9,
        "severity": "major",
        "category": "bug",
        "message": "total starts as None: += fails",
    }
    second = {
        "file": path,
        "anchor": "for x in items[1:]:",
        "line": 26,
        "severity": "minor",
        "category": "bug",
        "message": "skips the first item",
    }
    kind = n % 4
    if kind == 1:
        good["line"] = 42  # the wrong number, the right quote
    elif kind == 2 and not repair:
        return ['{"findings": [{"file": "' + path + '", "anchor": "tot']  # cut off: no complete finding
    elif kind == 3:
        second = {**second, "file": "pkg/ghost.py", "anchor": "def ghost():"}  # a file that is not there
    return [json.dumps({"findings": [good, second]})]


async def one_review(gitlab: GitLabDouble, project: str, cfg: dict[str, Any], model: str) -> ReviewOutcome:
    target = ReviewTarget(gitlab.url + "/api/v4", project, 1, GitLabToken(gitlab.token))
    async with aiohttp.ClientSession(connector=loopback_connector()) as session:
        return await review_merge_request(session, target, cfg, model=model)


async def bench(files: int, real: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-review-"))
    repo = build_repo(tmp, files)
    gitlab = GitLabDouble()
    project = gitlab.create_project("group/proj", reader=repo.read)
    mr = gitlab.create_mr(project, repo.mr_diff())
    await gitlab.start()
    server: Any = None
    ollama: OllamaDouble | None = None
    if real:
        from scripts.fetch_model import fetch
        from tests.fakes.llama_server import start_llama_server

        server = start_llama_server(
            fetch("smollm2-135m"), log_path=tmp / "server.log", alias="smollm2", n_ctx=2048, threads=2, timeout_s=120
        )
        cfg = config.merge(
            {
                "backend": {"kind": "openai", "url": server.url},
                "review": {"num_ctx": 2048, "num_predict": 200, "temperature": 0.0},
            }
        )
        model = "smollm2"
    else:
        ollama = OllamaDouble(models=[ModelSpec(MODEL)], script=Script(tokens=scripted))
        await ollama.start()
        cfg = config.merge({"backend": {"url": ollama.url}})
        model = MODEL
    try:
        started = time.monotonic()
        first = await one_review(gitlab, project.path_with_namespace, cfg, model)
        wall = time.monotonic() - started
        notes_after_first = sum(1 for d in mr.discussions if d.notes[0].type == "DiffNote")
        requests_first = len(gitlab.requests)
        second = await one_review(gitlab, project.path_with_namespace, cfg, model)
        notes_after_second = sum(1 for d in mr.discussions if d.notes[0].type == "DiffNote")
    finally:
        if ollama is not None:
            await ollama.stop()
        if server is not None:
            server.stop()
        await gitlab.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if first.error:
        raise SystemExit(first.error)
    reported = first.findings
    placed = sum(1 for f in reported if f["line"] is not None and not (f["why"] or "").startswith("not placeable"))
    reviewed = files - len(first.not_reviewed)
    return {
        "model": model,
        "real": real,
        "files": files,
        "files_reviewed": reviewed,
        "findings": len(reported),
        "placed": placed,
        "placement_rate": placed / len(reported) if reported else None,
        "inline_posted": first.posted,
        "position_4xx": len(gitlab.position_4xx()),
        "parse_first_try": (reviewed - (first.model_calls - reviewed)) / reviewed if reviewed else None,
        "parse_after_repair": (reviewed - first.parse_failures) / reviewed if reviewed else None,
        "model_calls": first.model_calls,
        "gitlab_requests": requests_first,
        "duplicates_on_rerun": notes_after_second - notes_after_first,
        "rerun_skipped": second.skipped_duplicates,
        "wall_s": round(wall, 3),
        "timings": {k: round(v, 3) for k, v in first.timings.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real", action="store_true", help="SmolLM2-135M on llama-cpp-python instead of the double")
    ap.add_argument("--files", type=int, default=0, help="files in the MR (default 20; 4 with --real)")
    args = ap.parse_args()
    result = asyncio.run(bench(args.files or (REAL_FILES if args.real else FILES), args.real))
    out = ROOT / "bench" / "results" / ("review_real.json" if args.real else "review.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    t = result["timings"]
    rate = result["placement_rate"]
    print(
        f"model {result['model']}: {result['files_reviewed']}/{result['files']} files reviewed, "
        f"{result['model_calls']} model calls"
    )
    print(
        f"placement  {result['placed']}/{result['findings']} findings placed"
        + (f" ({rate:.0%})" if rate is not None else "")
        + f", {result['inline_posted']} posted inline"
    )
    print(
        f"4xx        {result['position_4xx']} on position-bearing requests "
        f"({result['gitlab_requests']} GitLab requests in the first run)"
    )
    print(
        f"parse      {result['parse_first_try']:.0%} at the first try, {result['parse_after_repair']:.0%} after repair"
    )
    print(f"duplicates {result['duplicates_on_rerun']} on re-run ({result['rerun_skipped']} skipped as already posted)")
    print(
        f"wall time  {result['wall_s']:.2f} s: GitLab {t['gitlab_s']:.2f} s, model {t['model_s']:.2f} s, "
        f"ours {t['ours_s']:.2f} s"
    )
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
