"""What the black-box interop scripts share: a `pinvault serve` on a fresh
data directory, the command line against it, HTTP calls, checks counted, and
random PANs and PINs. (The older scripts carry their own copies.)"""
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request

rng = secrets.SystemRandom()


class Checks:
    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, 0

    def check(self, what, got, want):
        if got == want:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}: got {got!r}, want {want!r}", file=sys.stderr)

    def fail(self, what):
        self.failed += 1
        print(f"FAIL {what}", file=sys.stderr)

    def finish(self):
        print(f"{self.name}: {self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed or not self.passed else 0)


class Server:
    """`pinvault serve` on a fresh data directory; `env` adds to the environment."""

    def __init__(self, binary, env=None, tag="interop"):
        self.bin = binary
        self.data = tempfile.mkdtemp(prefix=f"pinvault-{tag}-")
        self.log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env={**os.environ, "PINVAULT_LOG": "info", **(env or {})})
        self.base = None
        for line in self.proc.stderr:
            self.log.write(line)
            m = re.match(r"pinvault listening on (\S+)", line)
            if m:
                self.base = m.group(1)
                break
        if not self.base:
            sys.exit("the server did not start")
        threading.Thread(target=lambda: [self.log.write(l) for l in self.proc.stderr],
                         daemon=True).start()

    def cli(self, *args, ok=True, stdin=None):
        out = subprocess.run([self.bin, *args, "--data-dir", self.data], capture_output=True,
                             text=True, timeout=600, input=stdin)
        if ok and out.returncode != 0:
            raise AssertionError(f"pinvault {args[:2]} failed: {out.stderr.strip()}")
        if not ok:
            return out
        return json.loads(out.stdout)

    def call(self, method, path, key, body=None):
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {key}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stop(self, checks):
        """Stops the server; a panic in its log is a failure."""
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.seek(0)
        text = self.log.read()
        if "panicked" in text:
            checks.fail("the server panicked:\n" + text[-3000:])
        subprocess.run(["rm", "-rf", self.data])
        return text


def digits(n):
    return "".join(str(rng.randrange(10)) for _ in range(n))


def luhn_pan(n):
    body = [rng.randrange(10) for _ in range(n - 1)]
    total = 0
    for i, d in enumerate(reversed(body)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return "".join(map(str, body)) + str((10 - total % 10) % 10)


def random_pin(lo=4, hi=12):
    while True:
        pin = digits(rng.randint(lo, hi))
        if len(set(pin)) > 1:
            return pin
