"""A small language server over stdio for tests: it holds hover requests pending until told to answer.

Send the notification `$/aiHostTestRelease` to make it answer every held request. Code actions are
answered at once with two titles, one naming the code of the first diagnostic the request carried
(so a test sees the diagnostics reach the server); after `$/aiHostTestHoldActions` they are held
too. Definitions: `$/aiHostTestDefine` {name: {uri, line, character}} says where names are defined;
`textDocument/definition` answers with the Location of the name at the position asked (from the
text the editor synced), or null for a name not defined; after `$/aiHostTestHoldDefinitions` they
are held (and answered on release). Everything else is answered at once (null), so a real Neovim
client attaches normally.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read_message(stream) -> dict | None:
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        line = line.decode("ascii").strip()
        if not line:
            break
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    if length is None:
        return None
    return json.loads(stream.read(length))


def send(stream, message: dict) -> None:
    body = json.dumps(message).encode()
    stream.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    stream.flush()


def code_actions(params: dict) -> list[dict]:
    diagnostics = (params.get("context") or {}).get("diagnostics") or []
    code = diagnostics[0].get("code", "?") if diagnostics else "nothing"
    return [
        {"title": "Import 'math'", "kind": "quickfix"},
        {"title": f"Ignore {code} for this line", "kind": "quickfix"},
    ]


def word_at(text: str, line: int, character: int) -> str:
    """The identifier at a 0-based position (ASCII test files: UTF-16 columns are byte columns)."""
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return ""
    for m in _WORD.finditer(lines[line]):
        if m.start() <= character < m.end():
            return m.group(0)
    return ""


def definition(params: dict, documents: dict[str, str], defined: dict[str, dict]) -> Any:
    doc = (params.get("textDocument") or {}).get("uri", "")
    pos = params.get("position") or {}
    where = defined.get(word_at(documents.get(doc, ""), pos.get("line", -1), pos.get("character", -1)))
    if where is None:
        return None
    start = {"line": where["line"], "character": where.get("character", 0)}
    return [{"uri": where["uri"], "range": {"start": start, "end": start}}]


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    held: list[tuple[int, Any]] = []  # (id, the answer it gets on release)
    hold_actions = hold_definitions = False
    documents: dict[str, str] = {}  # uri -> text, as the editor synced it (full sync)
    defined: dict[str, dict] = {}  # name -> {uri, line, character}
    while True:
        msg = read_message(stdin)
        if msg is None:
            return
        method, mid = msg.get("method"), msg.get("id")
        if method == "initialize":
            send(
                stdout,
                {
                    "jsonrpc": "2.0",
                    "id": mid,
                    "result": {
                        "capabilities": {
                            "hoverProvider": True,
                            "codeActionProvider": True,
                            "definitionProvider": True,
                            "textDocumentSync": 1,
                        },
                        "serverInfo": {"name": "slow-lsp"},
                    },
                },
            )
        elif method == "textDocument/didOpen":
            item = (msg.get("params") or {}).get("textDocument") or {}
            documents[item.get("uri", "")] = item.get("text", "")
        elif method == "textDocument/didChange":
            params = msg.get("params") or {}
            changes = params.get("contentChanges") or []
            if changes:
                documents[(params.get("textDocument") or {}).get("uri", "")] = changes[-1].get("text", "")
        elif method == "textDocument/definition":
            answer = definition(msg.get("params") or {}, documents, defined)
            if hold_definitions:
                held.append((mid, answer))
            else:
                send(stdout, {"jsonrpc": "2.0", "id": mid, "result": answer})
        elif method == "textDocument/hover":
            held.append((mid, None))
        elif method == "textDocument/codeAction" and hold_actions:
            held.append((mid, None))
        elif method == "textDocument/codeAction":
            send(stdout, {"jsonrpc": "2.0", "id": mid, "result": code_actions(msg.get("params") or {})})
        elif method == "$/aiHostTestHoldActions":
            hold_actions = True
        elif method == "$/aiHostTestHoldDefinitions":
            hold_definitions = True
        elif method == "$/aiHostTestDefine":
            defined.update(msg.get("params") or {})
        elif method == "$/aiHostTestRelease":
            for hid, answer in held:
                send(stdout, {"jsonrpc": "2.0", "id": hid, "result": answer})
            held.clear()
        elif method == "exit":
            return
        elif mid is not None:
            send(stdout, {"jsonrpc": "2.0", "id": mid, "result": None})


if __name__ == "__main__":
    main()
