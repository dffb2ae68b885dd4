"""The one exception family of ai_host: every error a user can meet, with the sentence they see.

    AiHostError                      anything ai_host raises on purpose
    ├── ConfigError                  bad or refused configuration (e.g. a remote URL without opt-in)
    ├── Dropped                      a job the scheduler let go quietly (ghost text while the LSP or GPU is busy)
    ├── GpuBusy                      GPU memory stayed above the threshold and gpu.on_busy = "stop"
    ├── DeadlineExceeded             the job ran past its deadline
    ├── UnusableReply                the model answered without code to apply
    ├── ReplyTooLong                 a reply that would not end (a server ignoring num_predict)
    ├── DeniedFile                   the buffer's file is on security.deny: nothing is sent
    │   ├── DeniedContent            the text is a file of secrets (dotenv, private key...) whatever its name
    │   └── DeniedTerminal           a terminal buffer (what `cat .env` printed there)
    ├── QueueFull, RateLimited       (scheduler.py) too much asked at once
    ├── BadMessage                   the editor sent a message the engine cannot read (Lua and Python differ)
    ├── GitLabError                  talking to GitLab failed (ai_host.gitlab.client)
    │   ├── GitLabUnreachable        nothing answers at the GitLab URL (connection refused, DNS, reset)
    │   │   └── GitLabCertificateError  GitLab's TLS certificate could not be verified (the message names why)
    │   ├── GitLabAuthFailed         401/403: the token is missing, wrong, expired, or lacks a scope or role
    │   │   └── GitLabTokenCannotWrite  a CI job token or a read-only token where the API needs an `api` token
    │   ├── GitLabRejected           another 4xx: GitLab refused what we sent (e.g. a diff position)
    │   │   └── GitLabNotFound       404: no such project, merge request, note, or feature
    │   ├── GitLabRateLimited        429 still, after the bounded waits
    │   ├── GitLabFailed             5xx, or an answer that is not GitLab's JSON
    │   └── GitLabNotReady           the merge request's diff_refs stayed empty (GitLab still computing)
    └── BackendError                 talking to the model server failed
        ├── EndpointUnavailable      this server cannot serve now: routing tries the next endpoint
        │   ├── ServerUnreachable    nothing answers at the URL (connection refused, DNS, reset before reply)
        │   ├── ServerBusy           503: the server's queue is full
        │   ├── ProtocolError        a malformed line, a line too long, or the connection cut mid-stream
        │   └── RedirectRefused      the server answered with a redirect, which is never followed
        ├── ModelUnavailable         this model cannot be used there: routing tries the next model
        │   ├── ModelNotFound        404: the model is not pulled
        │   ├── PinMismatch          the model's digest is not the one security.pins names
        │   └── UnsuitableModel      the model cannot do the task (e.g. no fill-in-the-middle)
        ├── TimedOut                 the server was reached but went quiet
        │   ├── FirstByteTimeout     connected, but no first byte within timeouts.first_byte_ms
        │   └── IdleTimeout          the stream went silent longer than timeouts.idle_ms
        ├── RequestRejected          other 4xx: the server refused what we sent
        ├── ServerFailed             5xx: the server (or its runner) failed
        └── StreamFailed             an in-band {"error": ...} line after the stream began

Callers catch the family they can handle; `user_message()` is the single sentence shown in the
editor (it always starts with "ai_host:" and says what to do next); `log_message()` is what the log
keeps: the detail, but never text a server sent (an error may echo the prompt, so the user's code),
only its size and a short hash. Server text in a message is one line of at most a few hundred
characters, without control sequences (`untrusted.one_line`).
"""

from __future__ import annotations

from .untrusted import fingerprint, one_line


class AiHostError(Exception):
    """Base of every error ai_host raises on purpose."""

    def user_message(self) -> str:
        return f"ai_host: {self}"

    def log_message(self) -> str:
        """What the log may keep of this error: never text a server sent."""
        return f"{type(self).__name__}: {self}"


class ConfigError(AiHostError):
    """The configuration is invalid or refused."""


class BadMessage(AiHostError):
    """A message from the editor that does not parse (ai_host.protocol); `job_id` names its job, if any."""

    def __init__(self, detail: str, job_id: str = ""):
        super().__init__(detail)
        self.job_id = job_id

    def user_message(self) -> str:
        return (
            f"ai_host: {self}: the editor sent what the Python host cannot read. Update the plugin and "
            "restart Neovim, so that its Lua and Python parts match."
        )


class Dropped(AiHostError):
    """Not an error the user needs to see: the job was let go (the reason goes to the log and status)."""


class GpuBusy(AiHostError):
    def user_message(self) -> str:
        return (
            f"ai_host: the GPU is busy ({self}). Free some GPU memory, raise `gpu.threshold`, "
            "or set `gpu.on_busy = 'warn'` to run anyway."
        )


class DeadlineExceeded(AiHostError):
    def user_message(self) -> str:
        return f"ai_host: the request took too long ({self}); it was stopped. Try again, or raise the deadline."


class DeniedFile(AiHostError):
    """The buffer's file matches `security.deny` (the message is the pattern)."""

    dropped = "file on security.deny"  # the reason ghost text gives in the status

    def user_message(self) -> str:
        return (
            f"ai_host: this file matches `security.deny` ({self}), so nothing was sent. "
            "Remove the pattern from security.deny if the file holds no secrets."
        )


class DeniedContent(DeniedFile):
    """The text is a file that holds secrets by nature, whatever the buffer is called (the message says which)."""

    dropped = "text of a secrets file"

    def user_message(self) -> str:
        return (
            f"ai_host: this buffer holds {self}, which is never sent whatever the buffer is called, "
            "so nothing was sent. Explain code from a source file instead."
        )


class DeniedTerminal(DeniedFile):
    """A terminal buffer: what commands printed there (`cat .env`) is never sent."""

    dropped = "terminal buffer"

    def user_message(self) -> str:
        return (
            "ai_host: this is a terminal buffer; what commands print there (such as `cat .env`) is never "
            "sent, so nothing was sent. Explain code from a source file instead."
        )


class ReplyTooLong(AiHostError):
    def user_message(self) -> str:
        return (
            f"ai_host: the reply went on for {self}, so it was stopped. Ask for less, or check the server's settings."
        )


class UnusableReply(AiHostError):
    def user_message(self) -> str:
        return (
            f"ai_host: the model's reply has no code to apply; it said: {self}. "
            "Try again, or say more precisely what to change."
        )


class BackendError(AiHostError):
    """Talking to a model server failed.

    `said` is what the server said about it, if anything: it goes into the message as one line of at
    most a few hundred characters without control sequences (after `message`, when that is given),
    and never into the log, which keeps its size and hash instead."""

    def __init__(
        self, message: str = "", *, url: str = "", model: str = "", status: int | None = None, said: str | None = None
    ):
        self.said = fingerprint(said) if said is not None else None
        if said is not None:
            shown = one_line(said) or "no details"
            message = f"{message} {shown}" if message else shown
        super().__init__(message)
        self.url = url
        self.model = model
        self.status = status

    def log_message(self) -> str:
        if self.said is None:
            return super().log_message()
        status = f" {self.status}" if self.status is not None else ""
        return f"{type(self).__name__}{status}: the server's text withheld ({self.said})"


class EndpointUnavailable(BackendError):
    """This server cannot serve now (down, busy, broken, redirecting): another endpoint may."""


class ModelUnavailable(BackendError):
    """This model cannot be used on this server (missing, wrong digest, unsuitable): another may."""


class TimedOut(BackendError):
    """The server was reached but went quiet (before its first byte, or mid-stream)."""


class ServerUnreachable(EndpointUnavailable):
    def user_message(self) -> str:
        return (
            f"ai_host: cannot reach the model server at {self.url} ({self}). "
            "Start it with `ollama serve`, or set `backend.url` / $OLLAMA_HOST to where it runs."
        )


class FirstByteTimeout(TimedOut):
    def user_message(self) -> str:
        return (
            f"ai_host: {self.url} sent nothing for {self}; the model may still be loading. "
            "Try again, or raise `timeouts.first_byte_ms`."
        )


class IdleTimeout(TimedOut):
    def user_message(self) -> str:
        return (
            f"ai_host: the stream from {self.url} stalled ({self}). "
            "Check the server's log, or raise `timeouts.idle_ms`."
        )


class ModelNotFound(ModelUnavailable):
    """The server does not have the model. The engine fills in `kind` (the endpoint's) and
    `available` (the names the server lists) when it can, so the message says what to do there."""

    kind: str = "ollama"
    available: list[str] | None = None

    def user_message(self) -> str:
        if self.kind == "ollama":
            todo = f"Run `ollama pull {self.model}`, or choose another model in `models`"
        else:
            todo = "Start the server with that model, or set `models` to one it serves"
        names = [one_line(n, 60) for n in (self.available or [])[:MAX_LISTED]]
        if names:
            more = len(self.available or []) - len(names)
            listed = ", ".join(names) + (f" and {more} more" if more > 0 else "")
            todo += f" (it has: {listed}; :AIModels picks one)"
        elif self.available is not None:
            todo += " (it lists no models)"
        return f"ai_host: model '{self.model}' is not available on {self.url}. {todo}."


MAX_LISTED = 8


class ServerBusy(EndpointUnavailable):
    def user_message(self) -> str:
        return f"ai_host: the model server at {self.url} is busy ({self}). Try again in a moment."


class RequestRejected(BackendError):
    def user_message(self) -> str:
        return (
            f"ai_host: the model server refused the request: {self}. "
            "Check the model and options in your ai_host config."
        )


class ServerFailed(BackendError):
    def user_message(self) -> str:
        return (
            f"ai_host: the model server failed: {self}. "
            "Check the server's log (e.g. `journalctl -u ollama`) and try again."
        )


class StreamFailed(BackendError):
    def user_message(self) -> str:
        return f"ai_host: the model stopped with an error: {self}. Try again, or check the server's log."


class ProtocolError(EndpointUnavailable):
    def user_message(self) -> str:
        return (
            f"ai_host: the reply from {self.url} broke off ({self}). "
            "Try again; if it persists, check the server (or a proxy in between)."
        )


class RedirectRefused(EndpointUnavailable):
    """The server answered with a redirect; ai_host follows none (the request carries the prompt)."""

    def user_message(self) -> str:
        return (
            f"ai_host: {self.url} answered with a redirect ({self}) and nothing was sent there: ai_host "
            "never follows redirects, so a prompt cannot reach a host it was not told about. "
            "Set `backend.url` to the address the server answers on itself."
        )


class PinMismatch(ModelUnavailable):
    """The model on the server is not the build `security.pins` names (or its digest cannot be read)."""

    def user_message(self) -> str:
        return (
            f"ai_host: model '{self.model}' on {self.url} was not used: {self}. "
            "Pull the pinned build, or update `security.pins` once you trust the new one."
        )


class UnsuitableModel(ModelUnavailable):
    def user_message(self) -> str:
        return (
            f"ai_host: model '{self.model}' {self}. Set `models.completion` to a code model with "
            "fill-in-the-middle (e.g. qwen2.5-coder:7b), or `completion.fim_template` to its family."
        )


class GitLabError(AiHostError):
    """Talking to GitLab failed. `status` is the HTTP status when there was one; the message never
    holds the token, and GitLab's own text in it is one bounded line (`untrusted.one_line`)."""

    def __init__(self, message: str = "", *, url: str = "", status: int | None = None):
        super().__init__(message)
        self.url = url
        self.status = status


class GitLabUnreachable(GitLabError):
    def user_message(self) -> str:
        return (
            f"ai_host: cannot reach GitLab at {self.url} ({self}). Check --gitlab-url / $CI_API_V4_URL "
            "and that this machine can reach the server."
        )


class GitLabCertificateError(GitLabUnreachable):
    def user_message(self) -> str:
        return (
            f"ai_host: the TLS certificate of {self.url} could not be verified ({self}); nothing was sent. "
            "If the server uses a private CA, pass its certificate with --ca-file or $CI_SERVER_TLS_CA_FILE."
        )


class GitLabAuthFailed(GitLabError):
    token_env = "AI_HOST_GITLAB_TOKEN"  # the variable the token came from (the client sets it)

    def user_message(self) -> str:
        return (
            f"ai_host: GitLab refused the token ({self}). Check ${self.token_env}: a project access "
            "token with `api` scope and role Reporter or above, not expired."
        )


class GitLabTokenCannotWrite(GitLabAuthFailed):
    """The message (set by the client) names the token kind and the variable to set."""

    def user_message(self) -> str:
        return f"ai_host: {self}"


class GitLabRejected(GitLabError):
    def user_message(self) -> str:
        return f"ai_host: GitLab refused the request: {self}. Check the project, merge request and token."


class GitLabNotFound(GitLabRejected):
    def user_message(self) -> str:
        return f"ai_host: GitLab says {self}. Check --project and --mr, and that the token's user can see the project."


class GitLabRateLimited(GitLabError):
    def user_message(self) -> str:
        return f"ai_host: GitLab kept rate-limiting the review ({self}). Try again in a minute."


class GitLabFailed(GitLabError):
    def user_message(self) -> str:
        return f"ai_host: GitLab failed: {self}. Try again; if it persists, check the GitLab server's health."


class GitLabNotReady(GitLabError):
    def user_message(self) -> str:
        return (
            f"ai_host: GitLab has not finished preparing the merge request ({self}). Run the review again in a minute."
        )
