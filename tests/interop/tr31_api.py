#!/usr/bin/env python3
"""Black-box: key exchange with TR-31 / X9.143 key blocks (API.md "Key
exchange"), against an independent implementation (psec's `tr31`, and the
`cryptography` AES and TDES it uses).

Starts `pinvault serve` on a fresh data directory, then:
- random key block protection keys of each algorithm (TDES double and triple
  length, AES-128, -192, -256), loaded as random components with
  `pinvault key-block-protection-keys import`: the check value is psec's
  (TDES: 3 bytes of TDES-ECB of zeros; AES: 3 bytes of AES-CMAC of 16 zeros),
  and `list` shows no key;
- random zone keys (TDES 16 and 24 bytes, AES 16, 24 and 32) wrapped by psec
  as versions B and C (under TDES KBPKs) and D (under AES ones), usage P0 with
  a random mode of use (B, D, E, N) and exportability (E, N, S), imported with
  `zone-keys import --tr31 BLOCK --kbpk kbpk_…` (the algorithm from the block,
  or given and checked; the block sometimes on stdin, the KCV sometimes
  given): the check value is psec's, `zone-keys list` keeps the block's
  version, usage, mode of use, exportability and key version, and the key
  works: a PIN block psec makes under it verifies `match` on a card with that
  PIN (and `mismatch` for another);
- random issuer master key sets whose keys arrive as E0 (AC), E2 (SMI) and E1
  (SMC) blocks: psec's check values, the blocks' facts kept per key;
- refused, with a clear message, a non-zero exit and nothing stored (the
  listings unchanged): blocks with one character changed in the header, the
  payload or the MAC; a K0 or D0 block for a zone key, a P0 block for an issuer
  key; a block under a KBPK id that does not exist; a version B/C block named
  with an AES KBPK.

    python3 tests/interop/tr31_api.py target/debug/pinvault [ROUNDS]

Also PIN verification keys from V2 (Visa PVK) and V1 (IBM 3624) blocks:
psec's check value, the block's facts kept, a card migrated with a PVV or
offset psec computed under the key verifies, the other usage refused.
"""
import json
import sys
import warnings

warnings.filterwarnings("ignore")

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from cryptography.hazmat.primitives.cmac import CMAC  # noqa: E402
from psec import des, pinblock, tr31  # noqa: E402

from common import Checks, Server, luhn_pan, random_pin, rng  # noqa: E402

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 12
t = Checks("tr31 api")

KBPKS = {"tdes2": ("tdes", 16), "tdes3": ("tdes", 24), "aes128": ("aes128", 16),
         "aes192": ("aes192", 24), "aes256": ("aes256", 32)}
ZONE = {"tdes16": ("tdes", "T", 16), "tdes24": ("tdes", "T", 24), "aes128": ("aes128", "A", 16),
        "aes192": ("aes192", "A", 24), "aes256": ("aes256", "A", 32)}
PARTS = (("ac", "E0"), ("smi", "E2"), ("smc", "E1"))


def aes(key, data):
    op = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return op.update(data) + op.finalize()


def kcv(alg, key):
    if alg == "tdes":
        return des.generate_kcv(key, 3).hex().upper()
    mac = CMAC(algorithms.AES(key))
    mac.update(bytes(16))
    return mac.finalize()[:3].hex().upper()


def random_key(length, tdes):
    key = rng.randbytes(length)
    return des.adjust_key_parity(key) if tdes else key


def components(key):
    parts = [rng.randbytes(len(key)) for _ in range(rng.randint(0, 2))]
    last = bytes(key)
    for p in parts:
        last = bytes(a ^ b for a, b in zip(last, p))
    return parts + [last]


def wrap(kbpk_alg, kbpk, usage, algorithm, key, mode=None, exportability=None):
    """A psec block: version B or C under a TDES KBPK, D under an AES one."""
    version = rng.choice("BC") if kbpk_alg == "tdes" else "D"
    mode = mode or rng.choice("BDEN")
    exportability = exportability or rng.choice("ENS")
    header = tr31.Header(version, usage, algorithm, mode, "00", exportability)
    return tr31.wrap(kbpk, header, key), (version, usage, mode, exportability)


def encipher(fmt, alg, key, pin, pan):
    if fmt == "iso_4":
        return pinblock.encipher_pinblock_iso_4(key, pin, pan).hex().upper()
    clear = pinblock.encode_pinblock_iso_0(pin, pan) if fmt == "iso_0" else \
        pinblock.encode_pinblock_iso_3(pin, pan)
    if alg == "tdes":
        return des.encrypt_tdes_ecb(key, clear).hex().upper()
    return aes(key, clear + bytes(8)).hex().upper()


def change(block, at):
    """The block with the character at `at` changed (to another of its kind)."""
    c = block[at]
    pool = "0123456789ABCDEF" if c in "0123456789ABCDEF" else "BDEN"
    return block[:at] + rng.choice([x for x in pool if x != c]) + block[at + 1:]


def refused(what, out, why, listings):
    t.check(f"{what}: refused", out.returncode != 0, True)
    t.check(f"{what}: says why", why in out.stderr, True)
    if why not in out.stderr:
        print(f"  stderr: {out.stderr.strip()}", file=sys.stderr)
    t.check(f"{what}: nothing on stdout", out.stdout.strip(), "")
    t.check(f"{what}: nothing stored", (s.cli("zone-keys", "list"), s.cli("issuer-keys", "list")),
            listings)


s = Server(BIN, tag="tr31")
try:
    created = s.cli("programs", "create", "--name", "issuer", "--mode", "live")
    key, program = created["api_key"], created["program_id"]
    s.cli("programs", "update", program, "--set", "allow_plaintext_pin=true")

    kbpks = {}
    for name, (alg, length) in KBPKS.items():
        k = random_key(length, alg == "tdes")
        args = ["key-block-protection-keys", "import", "--name", name, "--algorithm", alg]
        for c in components(k):
            args += ["--component", c.hex()]
        if rng.random() < 0.5:
            args += ["--kcv", kcv(alg, k)]
        out = s.cli(*args)
        t.check(f"kbpk {name} kcv", out["kcv"], kcv(alg, k))
        t.check(f"kbpk {name} id", out["kbpk_id"].startswith("kbpk_"), True)
        kbpks[name] = (out["kbpk_id"], alg, k)
    listed = s.cli("key-block-protection-keys", "list")
    t.check("kbpks listed", sorted(r["id"] for r in listed), sorted(v[0] for v in kbpks.values()))
    t.check("no kbpk shown", any(v[2].hex().upper() in str(listed).upper() for v in kbpks.values()),
            False)
    out = s.cli("key-block-protection-keys", "import", "--name", "x", "--algorithm", "aes128",
                "--component", rng.randbytes(16).hex(), "--kcv", "000000", ok=False)
    t.check("kbpk with a wrong kcv refused", (out.returncode != 0, "check value" in out.stderr),
            (True, True))

    zones = []
    for round_ in range(ROUNDS):
        kname = rng.choice(list(kbpks))
        kbpk_id, kbpk_alg, kbpk = kbpks[kname]
        zname = rng.choice(list(ZONE))
        zalg, letter, length = ZONE[zname]
        zkey = random_key(length, zalg == "tdes")
        block, (version, usage, mode, exportability) = wrap(kbpk_alg, kbpk, "P0", letter, zkey)
        tag = f"round {round_} {zname} under {kname} ({version}{mode}{exportability})"
        args = ["zone-keys", "import", "--name", tag, "--program", program, "--kbpk", kbpk_id]
        if rng.random() < 0.5:
            args += ["--algorithm", zalg]
        if rng.random() < 0.5:
            args += ["--kcv", kcv(zalg, zkey)]
        stdin = None
        if rng.random() < 0.3:
            args += ["--tr31", "-"]
            stdin = block + "\n"
        else:
            args += ["--tr31", block]
        out = s.cli(*args, ok=False, stdin=stdin)
        t.check(f"{tag} imported", out.returncode, 0)
        if out.returncode != 0:
            print(f"  {out.stderr.strip()}", file=sys.stderr)
            continue
        made = json.loads(out.stdout)
        t.check(f"{tag} kcv is psec's", made["kcv"], kcv(zalg, zkey))
        zpk = made["zone_key_id"]
        row = next(r for r in s.cli("zone-keys", "list") if r["id"] == zpk)
        t.check(f"{tag} algorithm from the block", row["algorithm"], zalg)
        t.check(f"{tag} block kept", row["tr31"], {
            "kbpk_id": kbpk_id, "version": version, "key_usage": "P0", "mode_of_use": mode,
            "exportability": exportability, "key_version": "00"})
        zones.append((zpk, zalg, zkey))

        # The key works: a PIN block psec makes under it verifies on a card.
        pan, pin = luhn_pan(rng.randint(13, 19)), random_pin()
        st, card = s.call("POST", "/v1/cards", key, {"pan": pan, "pin": {"pin": pin}})
        t.check(f"{tag} card", st, 201)
        if st != 201:
            print(card, file=sys.stderr)
            continue
        fmt = rng.choice(["iso_0", "iso_3"] + (["iso_4"] if zalg != "tdes" else []))
        wrong = random_pin()
        while wrong == pin:
            wrong = random_pin()
        for p, want in ((wrong, "mismatch"), (pin, "match")):
            st, body = s.call("POST", f"/v1/cards/{card['id']}/pin/verify", key, {
                "pin_block": encipher(fmt, zalg, zkey, p, pan), "format": fmt, "zone_key_id": zpk})
            t.check(f"{tag} {fmt} verify {want}", (st, body.get("result")), (200, want))

    st, body = s.call("GET", "/v1/zone-keys?limit=100", key)
    t.check("the API shows the blocks' facts, not the KBPK",
            all(set(z["tr31"]) == {"version", "key_usage", "mode_of_use", "exportability",
                                   "key_version"} for z in body["data"]), True)

    # Issuer master keys from E0, E2, E1 blocks (some keys from components).
    for round_ in range(max(2, ROUNDS // 4)):
        kname = rng.choice(list(kbpks))
        kbpk_id, kbpk_alg, kbpk = kbpks[kname]
        args = ["issuer-keys", "import", "--program", program, "--name", f"set {round_}",
                "--cvn", "visa_10", "--kbpk", kbpk_id]
        keys, want_tr31 = {}, {}
        for part, usage in PARTS:
            k = random_key(16, True)
            keys[part] = k
            if round_ == 0 or rng.random() < 0.8:
                block, (version, _, mode, exp) = wrap(kbpk_alg, kbpk, usage, "T", k,
                                                      mode=rng.choice("BCDEGNX"))
                args += [f"--imk-{part}-tr31", block]
                want_tr31[part] = {"kbpk_id": kbpk_id, "version": version, "key_usage": usage,
                                   "mode_of_use": mode, "exportability": exp,
                                   "key_version": "00"}
            else:
                args += [f"--imk-{part}", k.hex()]
                want_tr31[part] = None
            if rng.random() < 0.5:
                args += [f"--kcv-{part}", kcv("tdes", k)]
        out = s.cli(*args, ok=False)
        tag = f"issuer set {round_} under {kname}"
        t.check(f"{tag} imported", out.returncode, 0)
        if out.returncode != 0:
            print(f"  {out.stderr.strip()}", file=sys.stderr)
            continue
        made = json.loads(out.stdout)
        t.check(f"{tag} kcvs are psec's", made["kcv"], {p: kcv("tdes", k) for p, k in keys.items()})
        row = next(r for r in s.cli("issuer-keys", "list")
                   if r["id"] == made["issuer_key_set_id"])
        t.check(f"{tag} blocks kept", row["tr31"], want_tr31)

    # PIN verification keys from V2 (Visa PVK) and V1 (IBM 3624) blocks: the
    # KCV is psec's, the block's facts are kept, and a card migrated with a
    # PVV or an offset psec computed under that key verifies.
    from psec import pin as legacy
    vzone = rng.randbytes(16)
    vzpk = s.cli("zone-keys", "import", "--name", "pvk zone 2", "--program", program,
                 "--algorithm", "aes128", "--component", vzone.hex())["zone_key_id"]
    for round_ in range(max(2, ROUNDS // 3)):
        kname = rng.choice(list(kbpks))
        kbpk_id, kbpk_alg, kbpk = kbpks[kname]
        method, usage = rng.choice([("visa_pvv", "V2"), ("ibm_3624", "V1")])
        pk = random_key(rng.choice([16, 24]), True)
        block, (version, _, mode, exp) = wrap(kbpk_alg, kbpk, usage, "T", pk, mode=rng.choice("CGNV"))
        out = s.cli("pin-verification-keys", "import", "--program", program, "--name", f"pvk {round_}",
                    "--method", method, "--tr31", block, "--kbpk", kbpk_id, ok=False)
        tag = f"{method} from a {usage} block under {kname}"
        t.check(f"{tag} imported", out.returncode, 0)
        if out.returncode != 0:
            print(f"  {out.stderr.strip()}", file=sys.stderr)
            continue
        made = json.loads(out.stdout)
        t.check(f"{tag} kcv is psec's", made["kcv"], kcv("tdes", pk))
        row = next(r for r in s.cli("pin-verification-keys", "list")
                   if r["id"] == made["pin_verification_key_id"])
        t.check(f"{tag} block kept", row["tr31"], {"kbpk_id": kbpk_id, "version": version,
                "key_usage": usage, "mode_of_use": mode, "exportability": exp, "key_version": "00"})
        pan, pin = luhn_pan(16), random_pin(4, 8)
        if method == "visa_pvv":
            legacy_pin = {"pvv": legacy.generate_visa_pvv(pk, "3", pin[:4], pan), "pvki": "3"}
        else:
            legacy_pin = {"ibm3624_offset": legacy.generate_ibm3624_offset(
                pk, "0123456789012345", pin[:4], pan, 4, 11, "F")}
        legacy_pin["pin_verification_key_id"] = made["pin_verification_key_id"]
        st, card = s.call("POST", "/v1/cards", key, {"pan": pan, "pin": legacy_pin})
        st, body = s.call("POST", f"/v1/cards/{card['id']}/pin/verify", key, {
            "pin_block": encipher("iso_4", "aes128", vzone, pin, pan), "format": "iso_4",
            "zone_key_id": vzpk})
        t.check(f"{tag} a migrated card verifies", (st, body.get("result")), (200, "match"))
        # The other method's usage is refused.
        other = "V1" if usage == "V2" else "V2"
        wrong, _ = wrap(kbpk_alg, kbpk, other, "T", pk, mode="V")
        out = s.cli("pin-verification-keys", "import", "--program", program, "--name", "bad",
                    "--method", method, "--tr31", wrong, "--kbpk", kbpk_id, ok=False)
        t.check(f"{tag}: a {other} block refused", (out.returncode != 0, f"key usage is {other}" in out.stderr),
                (True, True))

    # Refusals: nothing stored, a reason given.
    listings = (s.cli("zone-keys", "list"), s.cli("issuer-keys", "list"))
    tid, _, tkbpk = kbpks["tdes2"]
    aid, _, akbpk = kbpks["aes256"]
    zkey = random_key(16, True)
    for kname, kid, kb, alg in (("tdes2", tid, tkbpk, "tdes"), ("aes256", aid, akbpk, "aes")):
        block, _ = wrap(alg, kb, "P0", "T", zkey)
        header_len = 16
        mac_len = {"B": 16, "C": 8, "D": 32}[block[0]]
        for where, at in (("header", rng.choice([8, 11, 9, 10])),
                          ("payload", rng.randrange(header_len, len(block) - mac_len)),
                          ("MAC", rng.randrange(len(block) - mac_len, len(block)))):
            bad = change(block, at)
            out = s.cli("zone-keys", "import", "--name", "bad", "--program", program,
                        "--tr31", bad, "--kbpk", kid, ok=False)
            refused(f"{kname} block changed in the {where}", out, "MAC does not match", listings)
        for usage in ("K0", "D0"):
            other, _ = wrap(alg, kb, usage, "T", zkey, mode="B")
            out = s.cli("zone-keys", "import", "--name", "bad", "--program", program,
                        "--tr31", other, "--kbpk", kid, ok=False)
            refused(f"{kname} {usage} block for a zone key", out, f"key usage is {usage}",
                    listings)
        p0, _ = wrap(alg, kb, "P0", "T", zkey)
        k = random_key(16, True)
        e2, _ = wrap(alg, kb, "E2", "T", k, mode="X")
        e1, _ = wrap(alg, kb, "E1", "T", k, mode="X")
        out = s.cli("issuer-keys", "import", "--program", program, "--name", "bad", "--cvn",
                    "visa_10", "--kbpk", kid, "--imk-ac-tr31", p0, "--imk-smi-tr31", e2,
                    "--imk-smc-tr31", e1, ok=False)
        refused(f"{kname} P0 block for an issuer key", out, "key usage is P0", listings)
        out = s.cli("zone-keys", "import", "--name", "bad", "--program", program,
                    "--tr31", block, "--kbpk", "kbpk_nosuchkeyatallnosuchkey", ok=False)
        refused(f"{kname} block under an unknown kbpk", out, "no key block protection key",
                listings)
    block, _ = wrap("tdes", tkbpk, "P0", "T", zkey)
    out = s.cli("zone-keys", "import", "--name", "bad", "--program", program,
                "--tr31", block, "--kbpk", aid, ok=False)
    refused("a TDES block named with an AES kbpk", out, "TDES key block protection key", listings)
    out = s.cli("zone-keys", "import", "--name", "bad", "--program", program,
                "--tr31", block, "--kbpk", tid, "--kcv", "000000", ok=False)
    refused("a block whose key has another kcv", out, "check value", listings)

    text = s.stop(t)
    secrets_seen = [v[2].hex().upper() for v in kbpks.values()] + \
        [z[2].hex().upper() for z in zones]
    t.check("no key in the log", any(x in text.upper() for x in secrets_seen), False)
    s = None
finally:
    if s is not None:
        s.stop(t)
t.finish()
