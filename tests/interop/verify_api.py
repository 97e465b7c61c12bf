#!/usr/bin/env python3
"""Black-box: PIN verification over HTTP with PIN blocks made by independent code.

Starts `pinvault serve` on a free port over a fresh data directory, loads zone
keys through `pinvault zone-keys import` (components split here, key check
values computed by psec and OpenSSL and passed with --kcv), and sends blocks
built by psec (formats 0, 3 and 4) and by hand with OpenSSL through
`cryptography` (format 1, which psec lacks; formats 0, 1 and 3 under AES as the
README documents them: the 8-byte block and 8 zero bytes, one AES-ECB block).

Checks: every format under every key size matches; a wrong PIN is a counted
mismatch and a match resets the count; a block bound to another PAN never
matches; garbage is 422 decryption_failed and counts nothing; 24 concurrent
wrong PINs leave exactly 3 failures and a blocked PIN on an inactive card;
unblock and reactivation; the sandbox counts like a terminal and is 404 for a
live program.

    python3 tests/interop/verify_api.py target/debug/pinvault [ROUNDS]
"""
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
import warnings
from concurrent.futures import ThreadPoolExecutor

warnings.filterwarnings("ignore")  # TDES deprecation notices from cryptography

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from cryptography.hazmat.primitives.cmac import CMAC  # noqa: E402
from psec import des, pinblock  # noqa: E402

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
rng = secrets.SystemRandom()
passed = failed = 0


def check(name, got, want):
    global passed, failed
    if got == want:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: got {got!r}, want {want!r}", file=sys.stderr)


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


def weakish(pin):
    return len(set(pin)) == 1


def random_pin():
    while True:
        pin = digits(rng.randint(4, 12))
        if not weakish(pin):
            return pin


# ---- independent PIN blocks ------------------------------------------------

def clear_iso1(pin):
    fill = "".join(rng.choice("0123456789ABCDEF") for _ in range(14 - len(pin)))
    return bytes.fromhex(f"1{len(pin):X}{pin}{fill}")


def clear_block(fmt, pin, pan):
    if fmt == "iso_0":
        return pinblock.encode_pinblock_iso_0(pin, pan)
    if fmt == "iso_1":
        return clear_iso1(pin)
    if fmt == "iso_3":
        return pinblock.encode_pinblock_iso_3(pin, pan)
    raise ValueError(fmt)


def aes_ecb(key, data):
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(data) + e.finalize()


def block_for(fmt, alg, key, pin, pan):
    if fmt == "iso_4":
        return pinblock.encipher_pinblock_iso_4(key, pin, pan).hex().upper()
    clear = clear_block(fmt, pin, pan)
    if alg == "tdes":
        return des.encrypt_tdes_ecb(key, clear).hex().upper()
    return aes_ecb(key, clear + bytes(8)).hex().upper()


def kcv(alg, key):
    if alg == "tdes":
        return des.generate_kcv(key, 3).hex().upper()
    mac = CMAC(algorithms.AES(key))
    mac.update(bytes(16))
    return mac.finalize()[:3].hex().upper()


# ---- the server --------------------------------------------------------------

data = tempfile.mkdtemp(prefix="pinvault-verify-")
log = tempfile.TemporaryFile("w+")
server = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data],
                          stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                          # Each card here gets dozens of undecryptable blocks on
                          # purpose: above the default per-card limit (20/h).
                          env={**os.environ, "PINVAULT_LOG": "info",
                               "PINVAULT_RATE_LIMIT_CARD_DECRYPT_FAILURES": "10000/h"})
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
    out = subprocess.run([BIN, *args, "--data-dir", data], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"pinvault {args[:2]} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def call(method, path, key, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


PROGRAMS = {}  # API key -> program id


def program(mode):
    created = cli("programs", "create", "--name", f"verify {mode}", "--mode", mode)
    cli("programs", "update", created["program_id"], "--set", "allow_plaintext_pin=true",
        "--set", "reject_weak_pins=false")
    PROGRAMS[created["api_key"]] = created["program_id"]
    return created["api_key"]


def card(key, pan, pin):
    status, body = call("POST", "/v1/cards", key, {"pan": pan, "pin": {"pin": pin}})
    assert status == 201, body
    return body["id"]


def verify(key, card_id, fmt, block, zpk):
    return call("POST", f"/v1/cards/{card_id}/pin/verify", key,
                {"pin_block": block, "format": fmt, "zone_key_id": zpk})


def result(reply):
    status, body = reply
    return (body.get("result"), body.get("remaining_tries")) if status == 200 else (status, body.get("code"))


def fail_count(key, card_id):
    return call("GET", f"/v1/cards/{card_id}/pin/status", key)[1]["fail_count"]


try:
    live = program("live")

    # Zone keys: each split into two random components, KCV checked on import.
    zone = {}
    for alg, size in (("tdes", 16), ("tdes", 24), ("aes128", 16), ("aes192", 24), ("aes256", 32)):
        key = secrets.token_bytes(size)
        c1 = secrets.token_bytes(size)
        c2 = bytes(a ^ b for a, b in zip(key, c1))
        want = kcv("tdes" if alg == "tdes" else "aes", key)
        out = cli("zone-keys", "import", "--name", f"{alg}-{size}", "--algorithm", alg,
                  "--component", c1.hex(), "--component", c2.hex(), "--kcv", want,
                  "--program", PROGRAMS[live])
        check(f"kcv {alg}/{size}", out["kcv"], want)
        zone[(alg, size)] = (out["zone_key_id"], key)
    # A wrong KCV is refused.
    bad = subprocess.run([BIN, "zone-keys", "import", "--name", "x", "--algorithm", "aes128",
                          "--component", secrets.token_hex(16), "--kcv", "000000",
                          "--program", PROGRAMS[live], "--data-dir", data],
                         capture_output=True, text=True)
    check("wrong kcv refused", bad.returncode != 0, True)

    for _ in range(ROUNDS):
        pin, pan = random_pin(), luhn_pan(rng.randint(13, 19))  # psec needs 13+ digits
        other_pan = luhn_pan(16)
        c = card(live, pan, pin)
        for (alg, size), (zpk, key) in zone.items():
            fmts = ["iso_0", "iso_1", "iso_3"] + ([] if alg == "tdes" else ["iso_4"])
            for fmt in fmts:
                name = f"{fmt}/{alg}-{size}"
                good = block_for(fmt, "tdes" if alg == "tdes" else "aes", key, pin, pan)
                check(f"{name} match", result(verify(live, c, fmt, good, zpk)), ("match", 3))
                wrong_pin = random_pin()
                while wrong_pin == pin:
                    wrong_pin = random_pin()
                wrong = block_for(fmt, "tdes" if alg == "tdes" else "aes", key, wrong_pin, pan)
                check(f"{name} mismatch", result(verify(live, c, fmt, wrong, zpk)), ("mismatch", 2))
                check(f"{name} count", fail_count(live, c), 1)
                check(f"{name} match resets", result(verify(live, c, fmt, good, zpk)), ("match", 3))
                check(f"{name} reset", fail_count(live, c), 0)
                if fmt != "iso_1":
                    # The same PIN bound to another PAN never matches; if refused as
                    # undecryptable, nothing is counted.
                    elsewhere = block_for(fmt, "tdes" if alg == "tdes" else "aes", key, pin, other_pan)
                    r = result(verify(live, c, fmt, elsewhere, zpk))
                    check(f"{name} other PAN", r in ((422, "decryption_failed"), ("mismatch", 2)), True)
                    if r == ("mismatch", 2):
                        verify(live, c, fmt, good, zpk)  # reset for the next check
                    check(f"{name} other PAN count", fail_count(live, c), 0)
                garbage = secrets.token_hex(len(good) // 2 + rng.choice([-1, 1])).upper()
                check(f"{name} garbage", result(verify(live, c, fmt, garbage, zpk)),
                      (422, "decryption_failed"))
                check(f"{name} not hex", result(verify(live, c, fmt, "ZZ" * (len(good) // 2), zpk)),
                      (422, "decryption_failed"))
                check(f"{name} garbage counts nothing", fail_count(live, c), 0)

    # 24 concurrent wrong PINs: exactly 3 counted, then blocked; the card inactive.
    pin, pan = random_pin(), luhn_pan(16)
    c = card(live, pan, pin)
    zpk, key = zone[("aes128", 16)]
    wrong_pin = "0" + pin[1:] if pin[0] != "0" else "1" + pin[1:]
    wrong = block_for("iso_4", "aes", key, wrong_pin, pan)
    barrier = threading.Barrier(24)

    def attempt(_):
        barrier.wait()
        return result(verify(live, c, "iso_4", wrong, zpk))

    with ThreadPoolExecutor(24) as pool:
        outcomes = list(pool.map(attempt, range(24)))
    check("concurrent mismatches", sorted(o[1] for o in outcomes if o[0] == "mismatch"), [0, 1, 2])
    check("concurrent blocked", sum(o == ("blocked", 0) for o in outcomes), 21)
    check("concurrent count", fail_count(live, c), 3)
    got = call("GET", f"/v1/cards/{c}", live)[1]
    check("blocked card inactive", (got["status"], got["pin"]["status"]), ("inactive", "blocked"))
    good = block_for("iso_4", "aes", key, pin, pan)
    check("blocked answers blocked", result(verify(live, c, "iso_4", good, zpk)), ("blocked", 0))
    check("unblock", call("POST", f"/v1/cards/{c}/pin/unblock", live, {"description": "called"})[0], 204)
    got = call("GET", f"/v1/cards/{c}", live)[1]
    check("unblocked card active", (got["status"], got["pin"]["status"]), ("active", "unblocked"))
    check("match after unblock", result(verify(live, c, "iso_4", good, zpk)), ("match", 3))
    for _ in range(3):
        verify(live, c, "iso_4", wrong, zpk)
    check("reactivate", call("PATCH", f"/v1/cards/{c}", live, {"status": "active"})[1]["pin"]["status"],
          "unblocked")
    check("match after reactivation", result(verify(live, c, "iso_4", good, zpk)), ("match", 3))

    # PIN change at an ATM: both blocks made here; the order of checks, the
    # policy on the new PIN, and the reversal, for random keys, formats and PINs.
    def change(key, card_id, fmt, current, new, zpk):
        return call("POST", f"/v1/cards/{card_id}/pin/change", key,
                    {"pin_block": current, "new_pin_block": new, "format": fmt, "zone_key_id": zpk})

    def other_than(*pins):
        p = random_pin()
        while p in pins:
            p = random_pin()
        return p

    strict_status, strict_created = 0, cli("programs", "create", "--name", "verify strict", "--mode", "live")
    strict = strict_created["api_key"]
    cli("programs", "update", strict_created["program_id"], "--set", "allow_plaintext_pin=true")
    for _ in range(ROUNDS):
        (alg, size), (zpk, key) = rng.choice(list(zone.items()))
        a = "tdes" if alg == "tdes" else "aes"
        fmt = rng.choice(["iso_0", "iso_1", "iso_3"] + ([] if alg == "tdes" else ["iso_4"]))
        name = f"atm {fmt}/{alg}-{size}"
        pin, pan = random_pin(), luhn_pan(rng.randint(13, 19))
        c = card(live, pan, pin)
        new, wrong = other_than(pin), other_than(pin)
        blk = lambda p: block_for(fmt, a, key, p, pan)  # noqa: E731
        status, body = change(live, c, fmt, blk(wrong), blk(new), zpk)
        check(f"{name} wrong current", (status, body.get("result"), body.get("remaining_tries"),
                                        body.get("change_id")), (200, "mismatch", 2, None))
        check(f"{name} wrong current changes nothing", result(verify(live, c, fmt, blk(pin), zpk)),
              ("match", 3))
        garbage = secrets.token_hex(len(blk(pin)) // 2).upper()
        r = change(live, c, fmt, blk(pin), garbage, zpk)
        check(f"{name} new block garbage", (r[0], r[1].get("code")), (422, "decryption_failed"))
        check(f"{name} garbage changes nothing", result(verify(live, c, fmt, blk(pin), zpk)), ("match", 3))
        status, body = change(live, c, fmt, blk(pin), blk(new), zpk)
        check(f"{name} changed", (status, body.get("result"), body.get("remaining_tries")),
              (200, "changed", 3))
        change_id = body.get("change_id") or ""
        check(f"{name} change id", change_id.startswith("pch_"), True)
        check(f"{name} no chip data", body.get("icc_response_data", "absent"), None)
        check(f"{name} new PIN verifies", result(verify(live, c, fmt, blk(new), zpk)), ("match", 3))
        check(f"{name} old PIN does not", result(verify(live, c, fmt, blk(pin), zpk)), ("mismatch", 2))
        check(f"{name} reverse", call("POST", f"/v1/pin-changes/{change_id}/reverse", live)[0], 204)
        check(f"{name} old PIN back", result(verify(live, c, fmt, blk(pin), zpk)), ("match", 3))
        r = call("POST", f"/v1/pin-changes/{change_id}/reverse", live)
        check(f"{name} reverse twice", (r[0], r[1].get("code")), (409, "reversal_not_possible"))
        # A change the PIN moved on from cannot be reversed.
        first = change(live, c, fmt, blk(pin), blk(new), zpk)[1].get("change_id")
        third = other_than(pin, new)
        check(f"{name} second change", change(live, c, fmt, blk(new), blk(third), zpk)[1].get("result"),
              "changed")
        r = call("POST", f"/v1/pin-changes/{first}/reverse", live)
        check(f"{name} reverse after another change", (r[0], r[1].get("code")),
              (409, "reversal_not_possible"))
        r = call("POST", f"/v1/pin-changes/{first}/reverse", strict)
        check(f"{name} another program's change", (r[0], r[1].get("code")), (404, "not_found"))
        # Tries count as in verification, up to blocked.
        outcomes = [result(change(live, c, fmt, blk(wrong), blk(new), zpk)) for _ in range(4)]
        check(f"{name} blocking", outcomes, [("mismatch", 2), ("mismatch", 1), ("mismatch", 0), ("blocked", 0)])

    # The policy on the new PIN: a weak one is refused, and only the reset fail
    # count is left of the request.
    (alg, size), (zpk, key) = ("aes128", 16), zone[("aes128", 16)]
    cli("zone-keys", "grant", zpk, "--program", strict_created["program_id"])
    pin, pan = "4826", luhn_pan(16)
    c = card(strict, pan, pin)
    verify(strict, c, "iso_4", block_for("iso_4", "aes", key, "1357", pan), zpk)
    check("atm weak before", fail_count(strict, c), 1)
    r = change(strict, c, "iso_4", block_for("iso_4", "aes", key, pin, pan),
               block_for("iso_4", "aes", key, "1111", pan), zpk)
    check("atm weak new PIN", (r[0], r[1].get("code")), (422, "weak_pin"))
    check("atm weak leaves the reset count", fail_count(strict, c), 0)
    check("atm weak keeps the PIN", result(verify(strict, c, "iso_4", block_for("iso_4", "aes", key, pin, pan), zpk)),
          ("match", 3))
    check("atm suspended", call("PATCH", f"/v1/cards/{c}", strict, {"status": "suspended"})[0], 200)
    r = change(strict, c, "iso_4", block_for("iso_4", "aes", key, pin, pan),
               block_for("iso_4", "aes", key, "2580", pan), zpk)
    check("atm suspended card", result(r), ("card_inactive", 3))
    del strict_status

    # The sandbox: test programs only, counted like a terminal.
    test = program("test")
    c = card(test, luhn_pan(16), "4826")
    sandbox = lambda p: result(call("POST", f"/v1/test/cards/{c}/pin/verify", test, {"pin": p}))  # noqa: E731
    check("sandbox match", sandbox("4826"), ("match", 3))
    check("sandbox mismatches", [sandbox("1111"), sandbox("2222"), sandbox("3333")],
          [("mismatch", 2), ("mismatch", 1), ("mismatch", 0)])
    check("sandbox blocked", sandbox("4826"), ("blocked", 0))
    lc = card(live, luhn_pan(16), "4826")
    check("sandbox absent for live", result(call("POST", f"/v1/test/cards/{lc}/pin/verify", live,
                                                 {"pin": "4826"})), (404, "not_found"))
finally:
    server.terminate()
    server.wait(timeout=10)
    log.seek(0)
    text = log.read()
    if "panicked" in text:
        failed += 1
        print("the server panicked:\n" + text[-3000:], file=sys.stderr)
    subprocess.run(["rm", "-rf", data])

print(f"verify api: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
