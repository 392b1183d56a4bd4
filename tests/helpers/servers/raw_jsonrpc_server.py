"""A minimal MCP server in raw JSON-RPC over stdio, the way a 1.x-era server speaks (no SDK).

It answers ``initialize`` with protocol 2024-11-05, ``tools/list`` with one ``upper`` tool,
``tools/call``, and -32601 to anything else (e.g. a newer client's ``server/discover`` probe).
"""

import json
import sys

TOOLS = [
    {
        "name": "upper",
        "description": "Upper-case a string.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    }
]


def answer(msg_id, result=None, error=None):
    reply = {"jsonrpc": "2.0", "id": msg_id}
    reply.update({"error": error} if error else {"result": result})
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    msg = json.loads(line)
    method, msg_id = msg.get("method"), msg.get("id")
    if msg_id is None:  # a notification
        continue
    if method == "initialize":
        answer(msg_id, {"protocolVersion": "2024-11-05", "capabilities": {"tools": {}},
                        "serverInfo": {"name": "raw", "version": "1.0"}})
    elif method == "tools/list":
        answer(msg_id, {"tools": TOOLS})
    elif method == "tools/call":
        text = msg["params"]["arguments"]["text"]
        answer(msg_id, {"content": [{"type": "text", "text": text.upper()}], "isError": False})
    else:
        answer(msg_id, error={"code": -32601, "message": f"method not found: {method}"})
