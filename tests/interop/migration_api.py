#!/usr/bin/env python3
"""Black-box: portfolio migration and PIN export over HTTP, against an
independent implementation of ISO 9564 (psec, and the `cryptography` AES and
TDES it uses).

Starts `pinvault serve` on a fresh data directory; for random zone keys (TDES
and AES), PANs and PINs:
- `POST /v1/cards` with `pin` as a PIN block made by psec (formats 0, 1, 3
  under TDES and AES, 4 under AES) under a `verify` zone key: the card then
  verifies `match` for blocks of that PIN and `mismatch` for another;
- `POST /v1/cards/{id}/pin/export` under an `export` zone key, every format:
  the block psec deciphers is the card's PIN, and the answer's KCV is psec's;
  event `pin.exported`;
- refusals that change nothing: export without `allow_pin_export` (403
  `export_not_allowed`), under a `verify` key (403), under another program's
  key (404); a card made with a block under an `export` key (403) or a block
  that does not decipher (422 `decryption_failed`); the per-card export limit (429).

    python3 tests/interop/migration_api.py target/debug/pinvault [ROUNDS]
"""
import sys
import warnings

warnings.filterwarnings("ignore")

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from cryptography.hazmat.primitives.cmac import CMAC  # noqa: E402
from psec import des, pinblock  # noqa: E402

from common import Checks, Server, luhn_pan, random_pin, rng  # noqa: E402

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
t = Checks("migration api")
FORMATS = {"tdes": ["iso_0", "iso_1", "iso_3"], "aes128": ["iso_0", "iso_1", "iso_3", "iso_4"],
           "aes256": ["iso_4", "iso_0"]}


def aes(key, data, decrypt=False):
    c = Cipher(algorithms.AES(key), modes.ECB())
    op = c.decryptor() if decrypt else c.encryptor()
    return op.update(data) + op.finalize()


def clear_block(fmt, pin, pan):
    if fmt == "iso_0":
        return pinblock.encode_pinblock_iso_0(pin, pan)
    if fmt == "iso_1":
        fill = "".join(rng.choice("0123456789ABCDEF") for _ in range(14 - len(pin)))
        return bytes.fromhex(f"1{len(pin):X}{pin}{fill}")
    if fmt == "iso_3":
        return pinblock.encode_pinblock_iso_3(pin, pan)
    raise ValueError(fmt)


def encipher(fmt, alg, key, pin, pan):
    if fmt == "iso_4":
        return pinblock.encipher_pinblock_iso_4(key, pin, pan).hex().upper()
    clear = clear_block(fmt, pin, pan)
    if alg == "tdes":
        return des.encrypt_tdes_ecb(key, clear).hex().upper()
    return aes(key, clear + bytes(8)).hex().upper()


def decipher(fmt, alg, key, block_hex, pan):
    block = bytes.fromhex(block_hex)
    if fmt == "iso_4":
        return pinblock.decipher_pinblock_iso_4(key, block, pan)
    clear = des.decrypt_tdes_ecb(key, block) if alg == "tdes" else aes(key, block, True)[:8]
    if fmt == "iso_0":
        return pinblock.decode_pinblock_iso_0(clear, pan)
    if fmt == "iso_3":
        return pinblock.decode_pinblock_iso_3(clear, pan)
    h = clear.hex().upper()
    assert h[0] == "1", h
    return h[2:2 + int(h[1], 16)]


def kcv(alg, key):
    if alg == "tdes":
        return des.generate_kcv(key, 3).hex().upper()
    mac = CMAC(algorithms.AES(key))
    mac.update(bytes(16))
    return mac.finalize()[:3].hex().upper()


def key_len(alg):
    return {"tdes": 16, "aes128": 16, "aes256": 32}[alg]


s = Server(BIN, tag="migration")
try:
    created = s.cli("programs", "create", "--name", "issuer", "--mode", "live")
    key, program = created["api_key"], created["program_id"]
    other = s.cli("programs", "create", "--name", "other", "--mode", "live")
    zones = {}
    for alg in FORMATS:
        for usage in ("verify", "export"):
            k = rng.randbytes(key_len(alg))
            if alg == "tdes":
                k = des.adjust_key_parity(k)
            out = s.cli("zone-keys", "import", "--name", f"{alg} {usage}", "--algorithm", alg,
                        "--component", k.hex(), "--program", program, "--usage", usage)
            t.check(f"{alg} {usage} kcv", out["kcv"], kcv(alg, k))
            zones[(alg, usage)] = (out["zone_key_id"], k)
    foreign = s.cli("zone-keys", "import", "--name", "foreign", "--algorithm", "aes128",
                    "--component", rng.randbytes(16).hex(), "--program", other["program_id"],
                    "--usage", "export")["zone_key_id"]

    # Export is the operator's to allow.
    pan, pin = luhn_pan(16), random_pin()
    vid, vkey = zones[("aes128", "verify")]
    st, card = s.call("POST", "/v1/cards", key, {"pan": pan, "pin": {
        "pin_block": encipher("iso_4", "aes128", vkey, pin, pan), "format": "iso_4",
        "zone_key_id": vid}})
    t.check("card from an ISO 4 block", st, 201)
    eid, _ = zones[("aes128", "export")]
    st, body = s.call("POST", f"/v1/cards/{card['id']}/pin/export", key,
                      {"zone_key_id": eid, "format": "iso_4"})
    t.check("export not allowed", (st, body.get("code")), (403, "export_not_allowed"))
    st, body = s.call("PATCH", "/v1/program", key, {"allow_pin_export": True})
    t.check("allow_pin_export is the operator's", (st, body.get("code")), (403, "forbidden"))
    s.cli("programs", "update", program, "--set", "allow_pin_export=true")

    for round_ in range(ROUNDS):
        alg = rng.choice(list(FORMATS))
        fmt_in = rng.choice(FORMATS[alg])
        pan, pin = luhn_pan(rng.randint(13, 19)), random_pin()
        vid, vkey = zones[(alg, "verify")]
        tag = f"round {round_} {alg} {fmt_in}"
        st, card = s.call("POST", "/v1/cards", key, {"pan": pan, "pin": {
            "pin_block": encipher(fmt_in, alg, vkey, pin, pan), "format": fmt_in,
            "zone_key_id": vid}})
        t.check(f"{tag} created", st, 201)
        if st != 201:
            print(card, file=sys.stderr)
            continue
        cid = card["id"]
        t.check(f"{tag} set by the issuer", card["pin"]["set_by"], "issuer")
        fmt_v = rng.choice(FORMATS[alg])
        wrong = random_pin()
        while wrong == pin:
            wrong = random_pin()
        for p, want in ((pin, "match"), (wrong, "mismatch"), (pin, "match")):
            st, body = s.call("POST", f"/v1/cards/{cid}/pin/verify", key, {
                "pin_block": encipher(fmt_v, alg, vkey, p, pan), "format": fmt_v, "zone_key_id": vid})
            t.check(f"{tag} verify {want}", (st, body.get("result")), (200, want))
        for ealg in FORMATS:
            efmt = rng.choice(FORMATS[ealg])
            eid, ekey = zones[(ealg, "export")]
            st, body = s.call("POST", f"/v1/cards/{cid}/pin/export", key,
                              {"zone_key_id": eid, "format": efmt})
            t.check(f"{tag} export {ealg} {efmt}", st, 200)
            if st == 200:
                t.check(f"{tag} export {ealg} {efmt} deciphers to the PIN",
                        decipher(efmt, ealg, ekey, body["pin_block"], pan), pin)
                t.check(f"{tag} export answer", (body["format"], body["zone_key_id"], body["kcv"]),
                        (efmt, eid, kcv(ealg, ekey)))
        st, body = s.call("GET", f"/v1/events?card_id={cid}&type=pin.exported", key)
        t.check(f"{tag} pin.exported events", len(body["data"]), len(FORMATS))
        t.check(f"{tag} no block in the event", "pin_block" in str(body), False)

    # Refusals that change nothing.
    pan, pin = luhn_pan(16), random_pin()
    vid, vkey = zones[("aes128", "verify")]
    eid, ekey = zones[("aes128", "export")]
    st, body = s.call("POST", "/v1/cards", key, {"pan": pan, "pin": {
        "pin_block": encipher("iso_4", "aes128", ekey, pin, pan), "format": "iso_4", "zone_key_id": eid}})
    t.check("a block under an export key", (st, body.get("code")), (403, "forbidden"))
    st, body = s.call("POST", "/v1/cards", key, {"pan": pan, "pin": {
        "pin_block": encipher("iso_4", "aes128", rng.randbytes(16), pin, pan), "format": "iso_4",
        "zone_key_id": vid}})
    t.check("a block that does not decipher", (st, body.get("code")), (422, "decryption_failed"))
    st, body = s.call("POST", "/v1/cards", key, {"pan": pan, "pin": {
        "pin_block": encipher("iso_4", "aes128", vkey, pin, pan), "format": "iso_4"}})
    t.check("a block without its key", (st, body.get("code")), (422, "invalid_request"))
    st, body = s.call("POST", "/v1/cards", key, {"pan": pan, "pin": {
        "pin_block": encipher("iso_4", "aes128", vkey, pin, pan), "format": "iso_4",
        "zone_key_id": vid, "pin": pin}})
    t.check("a block and a clear PIN", (st, body.get("code")), (422, "invalid_request"))
    st, body = s.call("POST", "/v1/cards", key, {"pan": pan, "pin": {
        "pin_block": "00" * 16, "format": "iso_4", "zone_key_id": "zpk_nosuchkeyatall000000"}})
    t.check("an unknown zone key", (st, body.get("code")), (404, "not_found"))
    st, listing = s.call("GET", "/v1/cards?limit=100", key)
    t.check("refused cards were not made", len(listing["data"]), ROUNDS + 1)

    cid = listing["data"][0]["id"]
    st, body = s.call("POST", f"/v1/cards/{cid}/pin/export", key, {"zone_key_id": vid, "format": "iso_4"})
    t.check("export under a verify key", (st, body.get("code")), (403, "forbidden"))
    st, body = s.call("POST", f"/v1/cards/{cid}/pin/export", key, {"zone_key_id": foreign, "format": "iso_4"})
    t.check("export under another program's key", (st, body.get("code")), (404, "not_found"))
    tid, _ = zones[("tdes", "export")]
    st, body = s.call("POST", f"/v1/cards/{cid}/pin/export", key, {"zone_key_id": tid, "format": "iso_4"})
    t.check("ISO 4 under TDES", (st, body.get("code")), (422, "invalid_request"))
    st, body = s.call("POST", f"/v1/cards/{cid}/pin/export", key, {"zone_key_id": eid, "format": "iso_9"})
    t.check("an unknown format", (st, body.get("code")), (422, "invalid_request"))
    # The per-card limit (10/h by default): a fresh card, ten exports, then 429.
    st, card = s.call("POST", "/v1/cards", key, {"pan": luhn_pan(16)})
    codes = [s.call("POST", f"/v1/cards/{card['id']}/pin/export", key,
                    {"zone_key_id": eid, "format": "iso_4"})[0] for _ in range(11)]
    t.check("ten exports a card an hour, then 429", codes, [200] * 10 + [429])
finally:
    s.stop(t)
t.finish()
