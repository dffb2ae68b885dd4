"""What a review reports: which files go to the model, where each finding goes (inline or the summary),
the inline comment bodies, the summary note, the --json findings and the GitLab Code Quality report.
Pure functions of the review's results: no I/O, no model, no GitLab.

Nothing here adds text a model or a diff did not already pass through the pipeline's redaction:
finding messages are scrubbed there, and line texts are the redacted ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..gitlab.diffmap import DiffRefs, FileDiff, file_diff, invalid_position, position
from .pipeline import FileReview, fingerprint
from .repo_config import RepoConfig
from .schema import SEVERITIES, Finding

INLINE, SUMMARY = "inline", "summary"
BADGES = {"blocker": "🛑 blocker", "major": "🔴 major", "minor": "🟡 minor", "info": "🔵 info"}
MAX_LISTED = 50  # findings listed in the summary; past that a count says how many more
MAX_SUGGESTION_LINES = 20
SHORT_SHA = 8
SHORT_DIGEST = 12
# GitLab Code Quality severities (docs: ci/testing/code_quality) for ours: the same words.
CODE_QUALITY_SEVERITY = {"blocker": "blocker", "major": "major", "minor": "minor", "info": "info"}


@dataclass
class Reported:
    """A finding as the review reports it: inline on a line, or in the summary and why."""

    finding: Finding
    fingerprint: str
    where: str = INLINE
    why: str = ""  # for SUMMARY: "no line of the diff matched its quote", "over the cap of N", ...
    position: dict[str, Any] | None = None  # the GitLab position, checked locally, when it has a line


@dataclass
class SummaryFacts:
    """Everything the summary note says besides the findings."""

    head_sha: str
    model: str
    digest: str = ""
    files_total: int = 0
    files_reviewed: int = 0
    not_reviewed: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    parse_failures: list[tuple[str, str]] = field(default_factory=list)  # (path, error)
    partial: list[tuple[str, str]] = field(default_factory=list)  # (path, what was left out)
    config_note: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # gitlab_s, model_s, ours_s


def line_of(finding: Finding) -> int | None:
    line = finding.line
    if line is None:
        return None
    return line.new_line if line.new_line is not None else line.old_line


def inline_body(finding: Finding) -> str:
    """The text of an inline comment (publish adds the fingerprint marker)."""
    parts = [
        f"**{BADGES.get(finding.severity, finding.severity)}** · {finding.category}"
        + (" · found by the secret scan" if finding.source == "secret-scan" else ""),
        "",
        finding.message,
    ]
    if finding.suggestion:
        lines = finding.suggestion.split("\n")[:MAX_SUGGESTION_LINES]
        fence = "````" if any("```" in ln for ln in lines) else "```"
        parts += ["", "Suggested:", fence, *lines, fence]
    return "\n".join(parts)


def verdict(reported: list[Reported]) -> str:
    counts = {s: sum(1 for r in reported if r.finding.severity == s) for s in SEVERITIES}
    said = ", ".join(f"{s}: {n}" for s, n in counts.items() if n)
    if counts["blocker"]:
        return f"**Verdict: do not merge yet** ({said}): fix the blockers first."
    if counts["major"]:
        return f"**Verdict: changes needed** ({said})."
    if reported:
        return f"**Verdict: fine to merge after a look at the notes** ({said})."
    return "**Verdict: no problems found** in the files reviewed."


def summary_text(reported: list[Reported], facts: SummaryFacts) -> str:
    """The summary note's visible text (publish adds the marker and any finding GitLab refused)."""
    inline = sum(1 for r in reported if r.where == INLINE)
    parts = [
        "### ai-host review",
        verdict(reported),
        f"Reviewed {facts.files_reviewed} of {facts.files_total} files at `{facts.head_sha[:SHORT_SHA]}`: "
        f"{len(reported)} findings, {inline} of them inline.",
    ]
    listed = [r for r in reported if r.where == SUMMARY]
    if listed:
        rows = [
            f"- {_where(r)} **{r.finding.severity}** ({r.finding.category}): {_one_line(r.finding.message)}"
            + (f" _({r.why})_" if r.why else "")
            for r in listed[:MAX_LISTED]
        ]
        if len(listed) > MAX_LISTED:
            rows.append(f"- … and {len(listed) - MAX_LISTED} more (see the job's --json report)")
        parts.append("**More findings**\n\n" + "\n".join(rows))
    if facts.not_reviewed:
        parts.append("**Files not reviewed**\n\n" + "\n".join(f"- `{p}`: {why}" for p, why in facts.not_reviewed))
    if facts.partial:
        parts.append("**Files reviewed in part**\n\n" + "\n".join(f"- `{p}`: {why}" for p, why in facts.partial))
    if facts.parse_failures:
        parts.append(
            "**Replies of the model that could not be read** (those files got no model findings)\n\n"
            + "\n".join(f"- `{p}`: {_one_line(e)}" for p, e in facts.parse_failures)
        )
    if facts.config_note:
        parts.append(f"**Review settings**: {facts.config_note}")
    parts.append(f"<sub>{_footer(facts)}</sub>")
    return "\n\n".join(parts)


def _footer(facts: SummaryFacts) -> str:
    model = f"model `{facts.model}`" + (f" ({facts.digest[:SHORT_DIGEST]})" if facts.digest else "")
    t = facts.timings
    times = (
        f"GitLab {t.get('gitlab_s', 0.0):.1f} s · model {t.get('model_s', 0.0):.1f} s · "
        f"ai-host {t.get('ours_s', 0.0):.1f} s"
    )
    return f"Reviewed by ai-host with {model} · {times} · edited in place on every run"


def _where(r: Reported) -> str:
    line = line_of(r.finding) or r.finding.line_hint
    return f"`{r.finding.file}`" + (f" line {line}" if line else "")


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def finding_json(r: Reported) -> dict[str, Any]:
    f = r.finding
    line = f.line
    return {
        "file": f.file,
        "line": line_of(f),
        "old_line": line.old_line if line else None,
        "new_line": line.new_line if line else None,
        "line_hint": f.line_hint,
        "severity": f.severity,
        "category": f.category,
        "message": f.message,
        "suggestion": f.suggestion,
        "source": f.source,
        "fingerprint": r.fingerprint,
        "where": r.where,
        "why": r.why or None,
    }


def code_quality(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GitLab's Code Quality report for the --json findings: unique fingerprints, lines from 1."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for f in findings:
        fp = str(f["fingerprint"])
        if fp in seen:
            continue
        seen.add(fp)
        out.append(
            {
                "description": _one_line(str(f["message"]), 1000),
                "check_name": f"ai-host/{f['category']}",
                "fingerprint": fp,
                "severity": CODE_QUALITY_SEVERITY.get(str(f["severity"]), "info"),
                "location": {"path": f["file"], "lines": {"begin": int(f.get("line") or f.get("line_hint") or 1)}},
            }
        )
    return out


def plan_files(
    entries: list[dict[str, Any]], refs: DiffRefs, model: str, digest: str
) -> tuple[list[FileDiff], SummaryFacts]:
    """The files to send to the model; the others named with GitLab's reason."""
    facts = SummaryFacts(head_sha=refs.head_sha, model=model, digest=digest, files_total=len(entries))
    files = []
    for entry in entries:
        path = str(entry.get("new_path") or entry.get("old_path") or "")
        if entry.get("too_large"):
            facts.not_reviewed.append(
                (path, "GitLab sent no diff: it is over the instance's diff size limit (too_large)")
            )
        elif entry.get("collapsed"):
            facts.not_reviewed.append(
                (path, "GitLab collapsed it: the merge request is over the instance's diff limits (collapsed)")
            )
        elif not str(entry.get("diff") or "").strip():
            facts.not_reviewed.append(
                (path, "GitLab sent an empty diff (a binary file, a mode change, or a rename without edits)")
            )
        else:
            files.append(file_diff(entry))
    return files, facts


def place_findings(
    files: list[FileDiff],
    reviews: list[FileReview],
    refs: DiffRefs,
    repo: RepoConfig,
    max_inline: int,
    facts: SummaryFacts,
) -> list[Reported]:
    """Every finding, placed inline where GitLab will take it, most severe first, at most `max_inline`."""
    reported: list[Reported] = []
    for fd, review in zip(files, reviews):
        if review.not_reviewed:
            facts.not_reviewed.append((fd.new_path, review.not_reviewed))
        else:
            facts.files_reviewed += 1
        if review.parse_error:
            facts.parse_failures.append((fd.new_path, review.parse_error))
        if review.partial:
            facts.partial.append((fd.new_path, review.partial))
        for finding in review.findings:
            if finding.source != "secret-scan" and finding.category not in repo.categories:
                continue
            r = Reported(finding, fingerprint(finding))
            if finding.line is None:
                r.where, r.why = SUMMARY, "no line of the diff matched its quote"
            else:
                r.position = position(fd, finding.line, refs)
                problem = invalid_position(fd, r.position, refs)
                if problem:
                    r.where, r.why, r.position = SUMMARY, f"not placeable: {problem}", None
            reported.append(r)
    reported.sort(key=lambda r: (SEVERITIES.index(r.finding.severity), r.where != INLINE))
    inline = [r for r in reported if r.where == INLINE]
    for r in inline[max_inline:]:
        r.where, r.why = SUMMARY, f"over the cap of {max_inline} inline comments"
    return reported
