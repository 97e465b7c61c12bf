#!/usr/bin/env python3
"""Black-box: webhook signatures checked with Python's own hmac, as a receiver would.

Starts `pinvault serve` (private targets allowed, 1 s retries) over a fresh data
directory and a receiver on loopback (Python's http.server) that answers 500 to
its first two requests. Runs a card's life through the API, then checks with
the README's `verify` function (hmac, hashlib) that every request the receiver
got is signed with the endpoint's secret, that a changed body or another secret
fails, that every listed event arrived with a 2xx, and that no body holds the
PIN or the PAN.

    python3 tests/interop/webhooks_api.py target/debug/pinvault
"""
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BIN = sys.argv[1]
PAN, PIN = "4000056655665556", "7391"
passed = failed = 0


def check(name, got, want):
    global passed, failed
    if got == want:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: got {got!r}, want {want!r}", file=sys.stderr)


# The README's example, as is.
def verify(secret: str, header: str, raw_body: bytes, tolerance_s: int = 300) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


received = []  # (signature header, body bytes, status answered)
lock = threading.Lock()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            status = 500 if len(received) < 2 else 204
            received.append((self.headers.get("Pinvault-Signature", ""), body, status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=hook.serve_forever, daemon=True).start()

data = tempfile.mkdtemp(prefix="pinvault-webhooks-")
log = tempfile.TemporaryFile("w+")
env = {**os.environ, "PINVAULT_LOG": "info", "PINVAULT_ALLOW_PRIVATE_WEBHOOK_TARGETS": "1",
       "PINVAULT_WEBHOOK_RETRY_SCHEDULE": ",".join(["1s"] * 20)}
server = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data],
                          stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
base = None
for line in server.stderr:
    log.write(line)
    m = re.match(r"pinvault listening on (\S+)", line)
    if m:
        base = m.group(1)
        break
if not base:
    sys.exit("the server did not start")
threading.Thread(target=lambda: [log.write(line) for line in server.stderr], daemon=True).start()


def cli(*args):
    out = subprocess.run([BIN, *args, "--data-dir", data], capture_output=True, text=True,
                         timeout=60, env=env)
    if out.returncode != 0:
        sys.exit(f"pinvault {args}: {out.stderr}")
    return json.loads(out.stdout)


def call(method, path, key, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


try:
    created = cli("programs", "create", "--name", "hooks", "--mode", "test")
    key = created["api_key"]
    cli("programs", "update", created["program_id"], "--set", "allow_plaintext_pin=true",
        "--set", "allow_plaintext_reveal=true")
    status, ep = call("POST", "/v1/webhook-endpoints", key, {
        "url": f"http://127.0.0.1:{hook.server_address[1]}/hook",
        "events": ["card.created", "pin.token_created", "pin.changed", "pin.revealed",
                   "pin.verification_failed", "pin.blocked", "pin.unblocked",
                   "pin.fail_count_reset"]})
    check("endpoint created", status, 201)
    secret = ep["secret"]
    status, card = call("POST", "/v1/cards", key, {"pan": PAN})
    check("card created", status, 201)
    cid = card["id"]
    for kind, extra in [("set_pin", {}), ("reveal_pin", {"cardholder_verification_method": "OTP"})]:
        status, tok = call("POST", f"/v1/cards/{cid}/control-tokens", key, {"type": kind, **extra})
        check(f"{kind} token", status, 201)
        if kind == "set_pin":
            check("pin set", call("PUT", f"/v1/cards/{cid}/pin", key,
                                  {"control_token": tok["token"], "pin": PIN})[0], 204)
        else:
            check("pin revealed", call("POST", f"/v1/cards/{cid}/pin/reveal", key,
                                       {"control_token": tok["token"]}), (200, {"pin": PIN}))
    for _ in range(3):
        call("POST", f"/v1/test/cards/{cid}/pin/verify", key, {"pin": "2580"})
    check("unblocked", call("POST", f"/v1/cards/{cid}/pin/unblock", key, {})[0], 204)
    status, events = call("GET", "/v1/events?limit=100", key)
    ids = {e["id"] for e in events["data"]}
    check("events listed", len(ids), 11)

    deadline = time.time() + 90
    while time.time() < deadline:
        with lock:
            done = {json.loads(b)["id"] for _, b, s in received if s < 300}
        if ids <= done:
            break
        time.sleep(0.2)
    check("every event delivered", ids <= done, True)
    with lock:
        got = list(received)
    check("first answers failed and were retried", sum(1 for *_, s in got if s == 500), 2)
    for sig, body, _ in got:
        check("signature verifies", verify(secret, sig, body), True)
        check("changed body fails", verify(secret, sig, body.replace(b"card_", b"card_z", 1)), False)
        check("other secret fails", verify(secret + "x", sig, body), False)
        check("no PIN or PAN in the body", (PIN.encode() in body, PAN.encode() in body),
              (False, False))
        listed = next(e for e in events["data"] if e["id"] == json.loads(body)["id"])
        check("body is the listed event", json.loads(body), listed)
finally:
    server.terminate()
    server.wait(timeout=10)
    hook.shutdown()
    log.seek(0)
    text = log.read()
    if "panicked" in text:
        failed += 1
        print("the server panicked:\n" + text[-3000:], file=sys.stderr)
    subprocess.run(["rm", "-rf", data])

print(f"webhooks api: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
