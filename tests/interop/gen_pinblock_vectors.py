#!/usr/bin/env python3
"""Writes PIN block vectors made by independent implementations.

psec (a Python payments library) builds and enciphers ISO 9564 formats 0, 3 and 4
and computes TDES key check values; `cryptography` (OpenSSL) computes the AES-CMAC
key check values. The Rust tests read the JSON this writes, so the vectors they
check against were never computed with pinvault's own code.

    python3 tests/interop/gen_pinblock_vectors.py > crates/pinblock/tests/vectors/psec.json
"""
import json
import secrets
import sys

from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC
from psec import des, pinblock

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
rng = secrets.SystemRandom()


def digits(n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def pin() -> str:
    return digits(rng.randint(4, 12))


def pan() -> str:
    # psec needs at least 13 PAN digits for formats 0 and 3.
    return digits(rng.randint(13, 19))


def tdes_key() -> bytes:
    return secrets.token_bytes(rng.choice([16, 24]))


def aes_cmac_kcv(key: bytes) -> str:
    c = CMAC(algorithms.AES(key))
    c.update(bytes(16))
    return c.finalize()[:5].hex().upper()


out = {"generator": "psec 1.3.0 + cryptography (OpenSSL)", "vectors": []}
v = out["vectors"]
for _ in range(N):
    p, a = pin(), pan()
    v.append({"format": "iso_0", "pin": p, "pan": a, "clear": pinblock.encode_pinblock_iso_0(p, a).hex().upper()})
    p, a = pin(), pan()
    v.append({"format": "iso_3", "pin": p, "pan": a, "clear": pinblock.encode_pinblock_iso_3(p, a).hex().upper()})
    p, a, k = pin(), pan(), tdes_key()
    clear = pinblock.encode_pinblock_iso_0(p, a)
    v.append({"format": "iso_0", "pin": p, "pan": a, "key": k.hex().upper(), "key_algorithm": "tdes",
              "clear": clear.hex().upper(), "enciphered": des.encrypt_tdes_ecb(k, clear).hex().upper()})
    p, a, k = pin(), pan(), tdes_key()
    clear = pinblock.encode_pinblock_iso_3(p, a)
    v.append({"format": "iso_3", "pin": p, "pan": a, "key": k.hex().upper(), "key_algorithm": "tdes",
              "clear": clear.hex().upper(), "enciphered": des.encrypt_tdes_ecb(k, clear).hex().upper()})
    p, a, k = pin(), pan(), secrets.token_bytes(rng.choice([16, 24, 32]))
    v.append({"format": "iso_4", "pin": p, "pan": a, "key": k.hex().upper(), "key_algorithm": "aes",
              "enciphered": pinblock.encipher_pinblock_iso_4(k, p, a).hex().upper()})
    p = pin()
    v.append({"format": "iso_4", "pin": p, "pan": pan(), "clear": pinblock.encode_pin_field_iso_4(p).hex().upper()})
    k = tdes_key()
    v.append({"kcv": des.generate_kcv(k, 3).hex().upper(), "key": k.hex().upper(), "key_algorithm": "tdes"})
    k = secrets.token_bytes(rng.choice([16, 24, 32]))
    v.append({"kcv": aes_cmac_kcv(k), "key": k.hex().upper(), "key_algorithm": "aes"})

json.dump(out, sys.stdout, indent=0)
sys.stdout.write("\n")
