"""A small language server over stdio for tests: it holds hover requests pending until told to answer.

Send the notification `$/aiHostTestRelease` to make it answer every held request. Everything else
is answered at once (null), so a real Neovim client attaches normally.
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


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    held: list[int] = []
    while True:
        msg = read_message(stdin)
        if msg is None:
            return
        method, mid = msg.get("method"), msg.get("id")
        if method == "initialize":
            send(stdout, {"jsonrpc": "2.0", "id": mid, "result": {
                "capabilities": {"hoverProvider": True, "textDocumentSync": 1}, "serverInfo": {"name": "slow-lsp"}}})
        elif method == "textDocument/hover":
            held.append(mid)
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
