"""Who a GitLab request is made as, and over what: the token (from the environment, never shown),
the TLS context, the project's reference in a URL, and the sentence for a token that cannot write."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import quote

TOKEN_ENV = "AI_HOST_GITLAB_TOKEN"  # a project access token with `api` scope; wins over CI_JOB_TOKEN
JOB_TOKEN_ENV = "CI_JOB_TOKEN"


@dataclass(frozen=True)
class GitLabToken:
    """A token and how it is sent: "private" (PRIVATE-TOKEN), "bearer" (OAuth) or "job" (JOB-TOKEN).

    `source` is the environment variable it came from; `token_env` is where an access token belongs
    (what `--token-env` names), the variable messages tell the user to set. Never the value."""

    value: str
    kind: str = "private"
    source: str = TOKEN_ENV
    token_env: str = TOKEN_ENV

    def __repr__(self) -> str:  # a token never lands in a traceback or a log line
        return f"GitLabToken(kind={self.kind!r}, source={self.source!r})"

    def headers(self) -> dict[str, str]:
        if self.kind == "bearer":
            return {"Authorization": f"Bearer {self.value}"}
        if self.kind == "job":
            return {"JOB-TOKEN": self.value}
        return {"PRIVATE-TOKEN": self.value}


def token_from_env(env: Mapping[str, str], token_env: str = TOKEN_ENV) -> GitLabToken | None:
    """The API token: `$token_env` (an access token) wins over `$CI_JOB_TOKEN`; None when neither is set."""
    if env.get(token_env):
        return GitLabToken(env[token_env], "private", token_env, token_env)
    if env.get(JOB_TOKEN_ENV):
        return GitLabToken(env[JOB_TOKEN_ENV], "job", JOB_TOKEN_ENV, token_env)
    return None


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying TLS context: the system's roots, plus the private CA in `ca_file` when given."""
    return ssl.create_default_context(cafile=ca_file or None)


def project_ref(project: int | str) -> str:
    """A project for the URL: a numeric id as it is, a path (`group/sub/proj`) URL-encoded whole."""
    text = str(project).strip()
    return text if text.isdigit() else quote(text, safe="")


def token_cannot_write_message(token: GitLabToken, what: str) -> str:
    who = "a CI job token" if token.kind == "job" else "this token (read-only, or a role below Reporter)"
    return (
        f"GitLab refused {what} to {who}. Reviewing needs a project access token with `api` scope, "
        f"role Reporter or above, in a CI/CD variable that is masked but not Protected, given as "
        f"${token.token_env} (Settings > Access tokens)."
    )
