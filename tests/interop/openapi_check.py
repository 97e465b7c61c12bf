#!/usr/bin/env python3
"""Starts `pinvault serve` on a free port over a fresh data directory and checks
the OpenAPI document it serves with an independent validator
(openapi-spec-validator, OpenAPI 3.1 rules).

    python3 tests/interop/openapi_check.py target/debug/pinvault
"""
import json
import subprocess
import sys
import tempfile
import urllib.request

from openapi_spec_validator import validate

BIN = sys.argv[1]
with tempfile.TemporaryDirectory() as data:
    server = subprocess.Popen(
        [BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    try:
        base = None
        for line in server.stderr:
            if line.startswith("pinvault listening on "):
                base = line.split()[-1]
                break
        if base is None:
            sys.exit("server did not start")
        doc = json.load(urllib.request.urlopen(base + "/openapi.json", timeout=10))
    finally:
        server.terminate()
        server.wait(timeout=10)

validate(doc)
operations = sum(len(v) for v in doc["paths"].values())
assert doc["openapi"].startswith("3.1"), doc["openapi"]
print(f"openapi: {operations} passed, 0 failed")
