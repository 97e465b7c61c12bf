#!/usr/bin/env python3
"""API fuzzing from the served OpenAPI document: starts `pinvault serve --dev` on a
free port over a fresh data directory and runs schemathesis against it with the
API key it printed. Fails on any 5xx, any response outside its documented schema
or status codes, any schema-violating request accepted, and any server panic.

    python3 tests/interop/api_fuzz.py target/debug/pinvault [EXAMPLES] [SEED] [SECONDS]

CI runs a bounded, seeded run. To explore, give no seed (`-`) and a time budget:

    python3 tests/interop/api_fuzz.py target/debug/pinvault 100 - 600   # ten minutes

The check `positive_data_acceptance` is left out: a schema cannot say "Luhn-valid",
so schema-valid PANs are rightly refused. `negative_data_rejection` also accepts
413: a schema-violating body can be too large before it is read (the 64 KiB limit).
"""
import os
import re
import subprocess
import sys
import tempfile

BIN = sys.argv[1]
EXAMPLES = sys.argv[2] if len(sys.argv) > 2 else "60"
SEED = sys.argv[3] if len(sys.argv) > 3 else "20261123"
SECONDS = sys.argv[4] if len(sys.argv) > 4 else None
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""
st = os.path.join(os.path.dirname(sys.executable), "schemathesis")

with tempfile.TemporaryDirectory() as data, tempfile.TemporaryFile("w+") as log:
    server = subprocess.Popen(
        [BIN, "serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", data],
        stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "PINVAULT_LOG": "warn"},
    )
    try:
        key = base = None
        for line in server.stdout:
            m = re.search(r"(pv_test_[A-Za-z0-9_-]+)", line)
            if m and key is None:
                key = m.group(1)
            m = re.match(r"export PV=(\S+)", line)
            if m:
                base = m.group(1)
                break
        if not key or not base:
            sys.exit("server did not start in dev mode")
        config = os.path.join(data, "schemathesis.toml")
        with open(config, "w") as f:
            f.write(CONFIG)
        args = [st, "--config-file", config, "run", f"{base}/openapi.json", "-H", f"Authorization: Bearer {key}",
                "--checks", "all", "--exclude-checks", "positive_data_acceptance",
                "--max-examples", EXAMPLES, "--workers", "1"]
        if SEED != "-":
            args += ["--seed", SEED]
        if SECONDS:
            args += ["--max-time", SECONDS, "--continue-on-failure"]
        # From the temporary directory, so schemathesis's cache stays out of the tree.
        result = subprocess.run(args, capture_output=True, text=True, cwd=data)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.seek(0)
        server_log = log.read()

tail = "\n".join(result.stdout.strip().splitlines()[-25:])
if result.returncode != 0:
    print(tail)
if "panicked" in server_log:
    print("the server panicked:\n" + server_log[-3000:])
m = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
passed = int(m.group(2)) if m else 0
failed = 0 if result.returncode == 0 and "panicked" not in server_log else 1
print(f"api fuzz: {passed} passed, {failed} failed")
sys.exit(failed)
