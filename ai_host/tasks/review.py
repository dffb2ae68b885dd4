""":AIReview in the editor: the working tree's changes reviewed file by file with the same pipeline,
prompts and redaction as `ai-host review`, each file's findings sent as they come (a part of
ai_host.engine.Engine). Reviews wait behind all editor work (the scheduler's REVIEW priority)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from ..backends import Backend
from ..jobs import Job
from ..log import logger
from ..protocol import Done, Findings, ReviewRequest, Status
from ..gitlab.diffmap import FileDiff
from ..review.local import LocalChanges, changes
from ..review.pipeline import FileReview, ReviewOptions, review_file
from ..scheduler import REVIEW
from ..security import Redactor
from .base import TaskBase


class ReviewTask(TaskBase):
    async def _run_review(self, job: Job, request: ReviewRequest, redactor: Redactor) -> None:
        started = time.monotonic()
        local = await changes(request.cwd or os.getcwd(), request.ref)
        rcfg = self.config["review"]
        options = ReviewOptions(
            num_ctx=int(rcfg["num_ctx"]),
            num_predict=int(rcfg["num_predict"]),
            temperature=float(rcfg["temperature"]),
            keep_alive=rcfg["keep_alive"],
            max_inline=int(rcfg["max_inline"]),
            min_severity=str(rcfg["min_severity"]),
            deny=tuple(self.config["security"]["deny"]),
        )
        for path, reason in local.skipped.items():
            self._emit(job.id, Findings(os.path.join(local.root, path), [], not_reviewed=reason))
        counts = {"files": len(local.files), "findings": 0, "not_reviewed": len(local.skipped)}
        for n, fd in enumerate(local.files, 1):
            self._emit(job.id, Status(f"reviewing {n}/{len(local.files)}: {fd.new_path}"))
            path = os.path.join(local.root, fd.new_path)
            done = await self._review_one(job, request, fd, options, local)
            items = [_item(f) for f in done.findings]
            counts["findings"] += len(items)
            counts["not_reviewed"] += done.not_reviewed is not None
            why = done.not_reviewed or (
                f"the model's reply could not be read ({done.parse_error})" if done.parse_error and not items else None
            )
            self._emit(job.id, Findings(path, items, not_reviewed=why))
        logger.info("job %s: reviewed %d files, %d findings", job.id, counts["files"], counts["findings"])
        self._emit(job.id, Done({**counts, "root": local.root, "seconds": round(time.monotonic() - started, 1)}))

    async def _review_one(
        self, job: Job, request: ReviewRequest, fd: FileDiff, options: ReviewOptions, local: LocalChanges
    ) -> FileReview:
        """One file, within the interactive deadline: a file that takes longer is named, the rest go on."""
        review: list[FileReview] = []

        async def attempt(backend: Backend, model: str) -> None:
            async with self._admitted(job, REVIEW, backend, model):
                source = local.sources.get(fd.new_path)
                review.append(await review_file(backend, model, fd, options=options, source=source, root=local.root))

        limit = self.admission.deadline_s("explain")
        try:
            async with asyncio.timeout(limit):
                await self.servers.routed(job, "review", request.model, attempt, self._say(job))
        except TimeoutError:
            return FileReview(fd.new_path, not_reviewed=f"the model took longer than {limit:g} s for it")
        return review[0]


def _item(finding: Any) -> dict[str, Any]:
    line = finding.line
    lnum = line.new_line if line is not None and line.new_line is not None else None
    return {
        "lnum": lnum,
        "severity": finding.severity,
        "category": finding.category,
        "message": finding.message,
        "suggestion": finding.suggestion,
    }
