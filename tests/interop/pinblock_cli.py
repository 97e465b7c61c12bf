#!/usr/bin/env python3
"""Black-box interop: the `pinvault` binary against independent ISO 9564 code.

For random PINs, PANs and keys, in both directions: psec builds or enciphers a
block and pinvault reads it; pinvault builds or enciphers one and psec reads it.
Formats 0 and 3 (clear and under TDES), format 4 (clear PIN field and under AES),
TDES key check values (psec) and AES-CMAC key check values (OpenSSL).

    python3 tests/interop/pinblock_cli.py target/release/pinvault [ROUNDS]
"""
import secrets
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")  # TDES deprecation notices from cryptography

from cryptography.hazmat.primitives.ciphers import algorithms  # noqa: E402
from cryptography.hazmat.primitives.cmac import CMAC  # noqa: E402
from psec import des, pinblock  # noqa: E402

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 100
rng = secrets.SystemRandom()
passed = failed = 0


def run(*args: str) -> str:
    out = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"pinvault {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def check(name: str, got, want) -> None:
    global passed, failed
    if got == want:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: got {got!r}, want {want!r}", file=sys.stderr)


def digits(n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


for _ in range(ROUNDS):
    pin, pan = digits(rng.randint(4, 12)), digits(rng.randint(13, 19))
    tdes = secrets.token_bytes(rng.choice([16, 24]))
    aes = secrets.token_bytes(rng.choice([16, 24, 32]))
    th, ah = tdes.hex(), aes.hex().upper()

    # Format 0, clear: deterministic, so the blocks must be equal.
    theirs = pinblock.encode_pinblock_iso_0(pin, pan).hex().upper()
    check("iso_0 encode", run("pinblock", "encode", "--format", "iso_0", "--pin", pin, "--pan", pan), theirs)
    check("iso_0 decode", run("pinblock", "decode", "--format", "iso_0", "--block", theirs, "--pan", pan), pin)

    # Format 3, clear: random fill, so each side reads the other's block.
    ours = run("pinblock", "encode", "--format", "iso_3", "--pin", pin, "--pan", pan)
    check("iso_3 ours->psec", pinblock.decode_pinblock_iso_3(bytes.fromhex(ours), pan), pin)
    theirs = pinblock.encode_pinblock_iso_3(pin, pan).hex()
    check("iso_3 psec->ours", run("pinblock", "decode", "--format", "iso_3", "--block", theirs, "--pan", pan), pin)

    # Formats 0 and 3 under TDES.
    for fmt, enc, dec in (
        ("iso_0", pinblock.encode_pinblock_iso_0, pinblock.decode_pinblock_iso_0),
        ("iso_3", pinblock.encode_pinblock_iso_3, pinblock.decode_pinblock_iso_3),
    ):
        ours = run("pinblock", "encode", "--format", fmt, "--pin", pin, "--pan", pan, "--key", th)
        clear = des.decrypt_tdes_ecb(tdes, bytes.fromhex(ours))
        check(f"{fmt}/tdes ours->psec", dec(clear, pan), pin)
        theirs = des.encrypt_tdes_ecb(tdes, enc(pin, pan)).hex()
        check(f"{fmt}/tdes psec->ours",
              run("pinblock", "decode", "--format", fmt, "--block", theirs, "--pan", pan, "--key", th), pin)

    # Format 4 under AES, and its clear PIN field.
    ours = run("pinblock", "encode", "--format", "iso_4", "--pin", pin, "--pan", pan, "--key", ah,
               "--key-algorithm", "aes")
    check("iso_4/aes ours->psec", pinblock.decipher_pinblock_iso_4(aes, bytes.fromhex(ours), pan), pin)
    theirs = pinblock.encipher_pinblock_iso_4(aes, pin, pan).hex()
    check("iso_4/aes psec->ours",
          run("pinblock", "decode", "--format", "iso_4", "--block", theirs, "--pan", pan, "--key", ah), pin)
    ours = run("pinblock", "encode", "--format", "iso_4", "--pin", pin, "--pan", pan)
    check("iso_4 field ours->psec", pinblock.decode_pin_field_iso_4(bytes.fromhex(ours)), pin)
    theirs = pinblock.encode_pin_field_iso_4(pin).hex()
    check("iso_4 field psec->ours", run("pinblock", "decode", "--format", "iso_4", "--block", theirs, "--pan", pan), pin)

    # Key check values.
    check("tdes kcv", run("kcv", "--key", th), des.generate_kcv(tdes, 3).hex().upper())
    mac = CMAC(algorithms.AES(aes))
    mac.update(bytes(16))
    check("aes kcv", run("kcv", "--key", ah, "--key-algorithm", "aes"), mac.finalize()[:3].hex().upper())

print(f"pinblock interop: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
