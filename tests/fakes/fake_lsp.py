"""A small language server over stdio for tests: it holds hover requests pending until told to answer.

Send the notification `$/aiHostTestRelease` to make it answer every held request. Code actions are
answered at once with two titles, one naming the code of the first diagnostic the request carried
(so a test sees the diagnostics reach the server); after `$/aiHostTestHoldActions` they are held
too. Everything else is answered at once (null), so a real Neovim client attaches normally.
"""

from __future__ import annotations

import json
import sys


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
    return [{"title": "Import 'math'", "kind": "quickfix"}, {"title": f"Ignore {code} for this line", "kind": "quickfix"}]


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    held: list[int] = []
    hold_actions = False
    while True:
        msg = read_message(stdin)
        if msg is None:
            return
        method, mid = msg.get("method"), msg.get("id")
        if method == "initialize":
            send(stdout, {"jsonrpc": "2.0", "id": mid, "result": {
                "capabilities": {"hoverProvider": True, "codeActionProvider": True, "textDocumentSync": 1}, "serverInfo": {"name": "slow-lsp"}}})
        elif method == "textDocument/hover":
            held.append(mid)
        elif method == "textDocument/codeAction" and hold_actions:
            held.append(mid)
        elif method == "textDocument/codeAction":
            send(stdout, {"jsonrpc": "2.0", "id": mid, "result": code_actions(msg.get("params") or {})})
        elif method == "$/aiHostTestHoldActions":
            hold_actions = True
        elif method == "$/aiHostTestRelease":
            for hid in held:
                send(stdout, {"jsonrpc": "2.0", "id": hid, "result": None})
            held.clear()
        elif method == "exit":
            return
        elif mid is not None:
            send(stdout, {"jsonrpc": "2.0", "id": mid, "result": None})


if __name__ == "__main__":
    main()
