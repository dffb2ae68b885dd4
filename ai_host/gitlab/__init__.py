"""GitLab merge-request review: the REST client, diff positions and publishing.

Public surface of the client and publishing (the modules are private in spirit: import from here):
`GitLabClient`, `GitLabToken`, `token_from_env`, `tls_context`, `project_ref`, and `publish_review`
with its input and output types `Inline`, `Summary`, `PublishResult`.
"""

from .client import GitLabClient, GitLabToken, project_ref, tls_context, token_from_env
from .publish import Inline, PublishResult, Summary, publish_review

__all__ = [
    "GitLabClient",
    "GitLabToken",
    "Inline",
    "PublishResult",
    "Summary",
    "project_ref",
    "publish_review",
    "tls_context",
    "token_from_env",
]
