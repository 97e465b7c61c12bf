#!/usr/bin/env python3
"""Portfolio migration's cryptography against an independent implementation (psec).

For random keys, PANs (12 to 19 digits, Luhn-valid) and PINs (4 to 12 digits):

- Visa PVV (crates/pinblock `pvv`): psec's `generate_visa_pvv` of the PIN's first
  four digits, for double- and triple-length PVKs and every PVKI; the value
  verifies, a changed PVV does not, another PIN verifies only if psec gives it
  the same PVV. A single-length PVK, which psec takes, is refused (Visa's PVK is
  double-length).
- IBM 3624 offsets (crates/pinblock `ibm3624`): psec's `generate_ibm3624_offset`
  of the PIN's first `check` digits, for single-, double- and triple-length PVKs,
  the default and random decimalization tables, random validation data windows
  (offset counted from 0 at the PAN's first digit, as psec's `pan_verify_offset`),
  pad characters in either case and PIN check lengths 4 to the PIN's length; the
  offset verifies, a changed one does not; a window past the PAN is refused by
  both.
- TR-31 key blocks (crates/keyblock), versions B, C and D, random KBPKs (TDES 16
  or 24 bytes, AES 16, 24 or 32), usages P0/V1/V2/E0/E1/E2/K0, random keys, key
  versions, exportabilities, optional blocks (some longer than 255 characters)
  and masked key lengths. psec's blocks unwrap to psec's key and header; blocks
  wrapped with the same pad bytes as psec's are psec's character for character;
  blocks wrapped with a random pad unwrap in psec to the key and header; a
  block with any one character changed, cut or extended is refused by both.

The crates are reached through an example binary that reads every case as one
JSON array on stdin:

    cargo build -p keyblock --examples
    python3 tests/interop/legacy_interop.py target/debug/examples/legacy_cases [ROUNDS]

Prints `legacy interop: N passed, M failed`; exits non-zero on any failure.
"""
import json
import secrets
import string
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")  # TDES deprecation notices from cryptography

from psec import pin as psec_pin  # noqa: E402
from psec import tr31  # noqa: E402

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 100
rng = secrets.SystemRandom()
passed = failed = 0

USAGES = {"P0": "BDE", "V1": "CGV", "V2": "CGV", "E0": "X", "E1": "X", "E2": "X", "K0": "BDE"}
ALNUM = string.ascii_letters + string.digits
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))
HEX = "0123456789ABCDEF"


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name} {detail}", file=sys.stderr)


def digits(n):
    return "".join(str(rng.randrange(10)) for _ in range(n))


def luhn_pan(n):
    body = digits(n - 1)
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def h(b):
    return b.hex().upper()


def other_digits(value):
    """The same length of digits, one of them changed."""
    i = rng.randrange(len(value))
    d = str((int(value[i]) + rng.randint(1, 9)) % 10)
    return value[:i] + d + value[i + 1:]


def run(cases):
    out = subprocess.run([BIN], input=json.dumps(cases), capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        print(f"{BIN} failed: {out.stderr.strip()}", file=sys.stderr)
        sys.exit(1)
    answers = json.loads(out.stdout)
    assert len(answers) == len(cases)
    return answers


def psec_refuses(kbpk, block):
    try:
        tr31.unwrap(kbpk, block)
    except (tr31.HeaderError, tr31.KeyBlockError, ValueError):
        return True
    return False


def tamper(block):
    """One character changed to another printable one that is not the same
    letter in the other case (psec reads hex of either case)."""
    i = rng.randrange(len(block))
    old = block[i]
    pool = HEX if rng.random() < 0.5 else PRINTABLE
    new = rng.choice([c for c in pool if c.upper() != old.upper()])
    return block[:i] + new + block[i + 1:], i


def header_of(psec_header):
    return {"version": psec_header.version_id, "key_usage": psec_header.key_usage,
            "algorithm": psec_header.algorithm, "mode_of_use": psec_header.mode_of_use,
            "key_version": psec_header.version_num,
            "exportability": psec_header.exportability,
            "blocks": [[k, v] for k, v in psec_header.blocks.items()]}


def random_header_and_key():
    version = rng.choice("BCD")
    kbpk = secrets.token_bytes(rng.choice([16, 24]) if version in "BC" else rng.choice([16, 24, 32]))
    usage = rng.choice(list(USAGES))
    algorithm = "T" if version in "BC" or rng.random() < 0.4 else "A"
    key_len = rng.choice([8, 16, 24]) if algorithm == "T" else rng.choice([16, 24, 32])
    fields = {"version": version, "key_usage": usage, "algorithm": algorithm,
              "mode_of_use": rng.choice(USAGES[usage]),
              "key_version": "00" if rng.random() < 0.5 else rng.choice(ALNUM) + rng.choice(ALNUM),
              "exportability": rng.choice("NES"), "blocks": []}
    ids = set()
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        block_id = rng.choice(["KS", "KV", "TS", "IK", "HM", "CT"]) if rng.random() < 0.6 else \
            rng.choice(ALNUM) + rng.choice(ALNUM)
        if block_id.upper() == "PB" or block_id in ids:
            continue
        ids.add(block_id)
        n = rng.randint(250, 300) if rng.random() < 0.15 else rng.randint(0, 40)
        fields["blocks"].append([block_id, "".join(rng.choice(PRINTABLE) for _ in range(n))])
    return kbpk, fields, secrets.token_bytes(key_len)


def psec_header(fields):
    hd = tr31.Header(fields["version"], fields["key_usage"], fields["algorithm"],
                     fields["mode_of_use"], fields["key_version"], fields["exportability"])
    for k, v in fields["blocks"]:
        hd.blocks[k] = v
    return hd


def psec_wrap(kbpk, fields, key, masked, pad=None):
    """psec's block; with `pad`, its random bytes are those."""
    saved = tr31._urandom
    if pad is not None:
        tr31._urandom = lambda n: pad[:n]
    try:
        return tr31.wrap(kbpk, psec_header(fields), key, masked)
    finally:
        tr31._urandom = saved


# Phase 1: cases whose answers psec knows now; our wraps to be checked by psec after.
cases, expected = [], []  # expected: (name, kind, value, extra)


def want(name, case, value, kind="eq", extra=None):
    cases.append(case)
    expected.append((name, kind, value, extra))


for r in range(ROUNDS):
    # Visa PVV.
    pvk = secrets.token_bytes(rng.choice([16, 24]))
    pan, pin, pvki = luhn_pan(rng.randint(12, 19)), digits(rng.randint(4, 12)), rng.randrange(10)
    base = {"pvk": h(pvk), "pan": pan, "pvki": pvki, "pin": pin}
    pvv = psec_pin.generate_visa_pvv(pvk, str(pvki), pin[:4], pan)
    want(f"pvv ({len(pvk)}-byte PVK, PAN of {len(pan)}, PIN of {len(pin)})", {"op": "pvv", **base}, pvv)
    want("pvv verifies", {"op": "verify_pvv", **base, "pvv": pvv}, True)
    want("changed pvv does not verify", {"op": "verify_pvv", **base, "pvv": other_digits(pvv)}, False)
    other = other_digits(pin[:4]) + pin[4:]
    want("another PIN verifies only with its own PVV",
         {"op": "verify_pvv", **base, "pin": other, "pvv": pvv},
         psec_pin.generate_visa_pvv(pvk, str(pvki), other[:4], pan) == pvv)
    if r % 10 == 0:
        want("single-length PVK refused", {"op": "pvv", **base, "pvk": h(secrets.token_bytes(8))}, None, "err")

    # IBM 3624.
    pvk = secrets.token_bytes(rng.choice([8, 16, 24]))
    pan, pin = luhn_pan(rng.randint(12, 19)), digits(rng.randint(4, 12))
    if rng.random() < 0.3 and len(pan) >= 15:
        table, voff, vlen, pad, check_len = "0123456789012345", 4, 11, "F", 4
    else:
        table = "0123456789012345" if rng.random() < 0.3 else digits(16)
        vlen = rng.randint(1, min(16, len(pan)))
        voff = rng.randint(0, len(pan) - vlen)
        pad = rng.choice("0123456789ABCDEFabcdef")
        check_len = rng.randint(4, len(pin))
    params = {"pvk": h(pvk), "pan": pan, "pin": pin, "table": table, "voff": voff, "vlen": vlen,
              "pad": pad, "check": check_len}
    offset = psec_pin.generate_ibm3624_offset(pvk, table, pin[:check_len], pan, voff, vlen, pad)
    want(f"ibm offset ({len(pvk)}-byte PVK, window {voff}+{vlen} of {len(pan)}, check {check_len} of {len(pin)})",
         {"op": "ibm_offset", **params}, offset)
    want("ibm offset verifies", {"op": "verify_ibm", **params, "offset": offset}, True)
    want("changed offset does not verify", {"op": "verify_ibm", **params, "offset": other_digits(offset)}, False)
    # A window past the PAN: psec refuses, so must the crate.
    late = len(pan) - vlen + 1
    if late + vlen <= 19:
        try:
            psec_pin.generate_ibm3624_offset(pvk, table, pin[:check_len], pan, late, vlen, pad)
            check("psec refuses a window past the PAN", False)
        except ValueError:
            want("window past the PAN refused", {"op": "ibm_offset", **params, "voff": late}, None, "err")

    # TR-31: psec's blocks, unwrapped here.
    kbpk, fields, key = random_header_and_key()
    masked = rng.choice([None, None, 0, len(key), 24, 32])
    block = psec_wrap(kbpk, fields, key, masked)
    ph, pk = tr31.unwrap(kbpk, block)
    want(f"unwrap psec's {fields['version']} block ({len(kbpk)}-byte KBPK, {fields['key_usage']}, "
         f"{len(key)}-byte key, {len(fields['blocks'])} optional blocks)",
         {"op": "unwrap", "kbpk": h(kbpk), "block": block}, {**header_of(ph), "key": h(pk)})
    bad, at = tamper(block)
    check(f"psec refuses its block changed at {at}", psec_refuses(kbpk, bad), bad)
    want(f"psec's block changed at {at} refused", {"op": "unwrap", "kbpk": h(kbpk), "block": bad}, None, "err")
    cut = block[:rng.randrange(len(block))]
    check("psec refuses its block cut", psec_refuses(kbpk, cut))
    want("psec's block cut refused", {"op": "unwrap", "kbpk": h(kbpk), "block": cut}, None, "err")
    longer = block + rng.choice(HEX) * rng.randint(1, 16)
    check("psec refuses its block extended", psec_refuses(kbpk, longer))
    want("psec's block extended refused", {"op": "unwrap", "kbpk": h(kbpk), "block": longer}, None, "err")

    # TR-31: wrapped here with psec's pad bytes, character for character psec's.
    kbpk, fields, key = random_header_and_key()
    key = key[:len(kbpk)]
    masked = rng.choice([None, 0, len(key), 24, 32])
    pad = secrets.token_bytes(64)
    case = {"op": "wrap", "kbpk": h(kbpk), "key": h(key), "pad": h(pad), **fields}
    if masked is not None:
        case["masked"] = masked
    want(f"wrap {fields['version']} ({len(kbpk)}-byte KBPK, {len(key)}-byte key, masked {masked}) "
         "== psec's with the same pad", case, psec_wrap(kbpk, fields, key, masked, pad))

    # TR-31: wrapped here with a random pad, read by psec (phase 2).
    kbpk, fields, key = random_header_and_key()
    key = key[:len(kbpk)]
    want(f"wrap {fields['version']} read by psec", {"op": "wrap", "kbpk": h(kbpk), "key": h(key), **fields},
         None, "psec_reads", (kbpk, fields, key))

answers = run(cases)
later, later_expected = [], []
for case, (name, kind, value, extra), answer in zip(cases, expected, answers):
    if kind == "err":
        check(name, "err" in answer, repr(answer))
    elif "err" in answer:
        check(name, False, f"error {answer['err']!r}")
    elif kind == "eq":
        check(name, answer["ok"] == value, f"got {answer['ok']!r}, want {value!r}")
    elif kind == "psec_reads":
        kbpk, fields, key = extra
        block = answer["ok"]
        try:
            ph, pk = tr31.unwrap(kbpk, block)
            check(name, pk == key and header_of(ph) == fields, block)
        except ValueError as e:
            check(name, False, f"psec: {e}: {block}")
        # As long as psec's own block for the same header and key.
        check(name + ": psec's length", len(block) == len(psec_wrap(kbpk, fields, key, None)))
        bad, at = tamper(block)
        check(f"psec refuses our block changed at {at}", psec_refuses(kbpk, bad), bad)
        later.append({"op": "unwrap", "kbpk": h(kbpk), "block": bad})
        later_expected.append(f"our block changed at {at} refused")
        later.append({"op": "unwrap", "kbpk": h(kbpk), "block": block})
        later_expected.append(("our block unwraps", h(key)))

# Phase 2: our own blocks back, as they are and tampered.
for name, answer in zip(later_expected, run(later)):
    if isinstance(name, tuple):
        check(name[0], answer.get("ok", {}).get("key") == name[1], repr(answer))
    else:
        check(name, "err" in answer, repr(answer))

print(f"legacy interop: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
