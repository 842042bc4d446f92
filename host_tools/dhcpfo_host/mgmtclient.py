"""Talk to a node's management port: one JSON object per line each way."""
import json
import socket


class MgmtError(Exception):
    pass


def call(host, port, request, timeout=5.0):
    """Send one request, return the decoded answer; raise MgmtError when the node says no."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall((json.dumps(request) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    if not buf:
        raise MgmtError("no answer from %s:%d" % (host, port))
    resp = json.loads(buf)
    if not resp.get("ok"):
        raise MgmtError(resp.get("error", "request failed"))
    return resp
