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
  that does not decipher (422 `decryption_failed`); the per-card export limit (429);
- legacy cards: random PVKs imported by `pinvault pin-verification-keys
  import` (Visa PVV, and IBM 3624 with random decimalization tables,
  validation data windows, pad characters and check lengths) give psec's
  check value; cards made with PVVs and offsets psec computed verify
  `mismatch` for other PINs (a try counted) and `match` for theirs, which
  captures the PIN (`verification` `stored`, event `pin.changed` with
  `source` `migration`), after which reveal and export give that PIN; before
  it, reveal and export are 409 `pin_not_available`; with
  `migrate_legacy_pins` false a match captures nothing; concurrent matching
  verifications capture once; a new PIN replaces the legacy data; malformed
  legacy data is refused;
- `pinvault cards import` of a JSON Lines file of PIN blocks, PVVs and
  offsets, with refused lines (never their PIN data in the rejects file):
  the counts, then a second run imports nothing; the cards verify.

    python3 tests/interop/migration_api.py target/debug/pinvault [ROUNDS]
"""
import sys
import warnings

warnings.filterwarnings("ignore")

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from cryptography.hazmat.primitives.cmac import CMAC  # noqa: E402
from psec import des, pinblock  # noqa: E402
from psec import pin as legacy  # noqa: E402

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
    # ---- legacy verification data ------------------------------------------
    s.cli("programs", "update", program, "--set", "allow_plaintext_reveal=true",
          "--set", "allow_plaintext_pin=true", "--set", "reject_weak_pins=false")
    pvk_visa = des.adjust_key_parity(rng.randbytes(rng.choice([16, 24])))
    out = s.cli("pin-verification-keys", "import", "--program", program, "--name", "visa",
                "--method", "visa_pvv", "--component", pvk_visa.hex())
    t.check("PVK kcv", out["kcv"], kcv("tdes", pvk_visa))
    visa_id = out["pin_verification_key_id"]
    ibm = []
    for i in range(3):
        ikey = des.adjust_key_parity(rng.randbytes(rng.choice([16, 24])))
        table = "".join(rng.choice("0123456789") for _ in range(16)) if i else "0123456789012345"
        length = rng.randint(4, 6) if i else 4
        off, vlen = (rng.randint(0, 3), rng.randint(8, 12)) if i else (4, 11)
        pad = rng.choice("0123456789ABCDEF") if i else "F"
        args = ["pin-verification-keys", "import", "--program", program, "--name", f"ibm {i}",
                "--method", "ibm_3624", "--component", ikey.hex()]
        if i:
            args += ["--decimalization-table", table, "--validation-data-offset", str(off),
                     "--validation-data-length", str(vlen), "--pad-character", pad,
                     "--pin-length", str(length)]
        out = s.cli(*args)
        t.check(f"IBM key {i} kcv", out["kcv"], kcv("tdes", ikey))
        ibm.append((out["pin_verification_key_id"], ikey, table, off, vlen, pad, length))
    listed = s.cli("pin-verification-keys", "list", "--program", program)
    t.check("keys listed, never a key", (len(listed), pvk_visa.hex() in str(listed).lower()), (4, False))

    def legacy_card(kind, pin, pan):
        if kind == "visa":
            pvki = str(rng.randint(0, 9))
            pvv = legacy.generate_visa_pvv(pvk_visa, pvki, pin[:4], pan)
            return {"pvv": pvv, "pvki": pvki, "pin_verification_key_id": visa_id}
        kid, ikey, table, off, vlen, pad, length = rng.choice(ibm)
        offset = legacy.generate_ibm3624_offset(ikey, table, pin[:length], pan, off, vlen, pad)
        return {"ibm3624_offset": offset, "pin_verification_key_id": kid}

    def verify(cid, pan, pin):
        vid, vkey = zones[("aes128", "verify")]
        return s.call("POST", f"/v1/cards/{cid}/pin/verify", key, {
            "pin_block": encipher("iso_4", "aes128", vkey, pin, pan), "format": "iso_4",
            "zone_key_id": vid})

    def reveal_token(cid):
        st, tok = s.call("POST", f"/v1/cards/{cid}/control-tokens", key,
                         {"type": "reveal_pin", "cardholder_verification_method": "OTP"})
        return tok["token"]

    def reveal(cid, token=None):
        return s.call("POST", f"/v1/cards/{cid}/pin/reveal", key,
                      {"control_token": token or reveal_token(cid)})

    eid, ekey = zones[("aes128", "export")]
    for round_ in range(ROUNDS):
        kind = rng.choice(["visa", "ibm"])
        pan, pin = luhn_pan(rng.randint(16, 19)), random_pin(6, 12)
        tag = f"legacy {round_} {kind}"
        st, card = s.call("POST", "/v1/cards", key, {"pan": pan, "pin": legacy_card(kind, pin, pan)})
        t.check(f"{tag} created", st, 201)
        if st != 201:
            print(card, file=sys.stderr)
            continue
        cid = card["id"]
        t.check(f"{tag} verification", card["pin"]["verification"], "visa_pvv" if kind == "visa" else "ibm_3624")
        token = reveal_token(cid)
        st, body = reveal(cid, token)
        t.check(f"{tag} reveal before capture", (st, body.get("code")), (409, "pin_not_available"))
        st, body = s.call("POST", f"/v1/cards/{cid}/pin/export", key, {"zone_key_id": eid, "format": "iso_4"})
        t.check(f"{tag} export before capture", (st, body.get("code")), (409, "pin_not_available"))
        wrong = random_pin(6, 12)
        while wrong[:6] == pin[:6]:
            wrong = random_pin(6, 12)
        st, body = verify(cid, pan, wrong)
        t.check(f"{tag} mismatch", (st, body.get("result"), body.get("remaining_tries")), (200, "mismatch", 2))
        st, body = verify(cid, pan, pin)
        t.check(f"{tag} match", (st, body.get("result"), body.get("remaining_tries")), (200, "match", 3))
        st, card = s.call("GET", f"/v1/cards/{cid}", key)
        t.check(f"{tag} captured", (card["pin"]["verification"], card["pin"]["fail_count"]), ("stored", 0))
        # The same token: the refused reveal did not spend it.
        st, body = reveal(cid, token)
        t.check(f"{tag} reveal after capture", (st, body.get("pin")), (200, pin))
        st, body = s.call("POST", f"/v1/cards/{cid}/pin/export", key, {"zone_key_id": eid, "format": "iso_4"})
        t.check(f"{tag} export after capture", st == 200 and decipher("iso_4", "aes128", ekey, body["pin_block"], pan), pin)
        st, body = s.call("GET", f"/v1/events?card_id={cid}&type=pin.changed", key)
        t.check(f"{tag} pin.changed migration", [e["data"].get("source") for e in body["data"]], ["migration"])
        st, body = verify(cid, pan, pin)
        t.check(f"{tag} match as a stored PIN", body.get("result"), "match")

    # Concurrent matching verifications capture once.
    from concurrent.futures import ThreadPoolExecutor
    pan, pin = luhn_pan(16), random_pin(6, 12)
    st, card = s.call("POST", "/v1/cards", key, {"pan": pan, "pin": legacy_card("visa", pin, pan)})
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: verify(card["id"], pan, pin), range(10)))
    t.check("concurrent matches", [r[1].get("result") for r in results], ["match"] * 10)
    st, body = s.call("GET", f"/v1/events?card_id={card['id']}&type=pin.changed", key)
    t.check("captured once", len(body["data"]), 1)

    # A new PIN replaces the legacy data.
    pan, pin = luhn_pan(16), random_pin(6, 12)
    st, card = s.call("POST", "/v1/cards", key, {"pan": pan, "pin": legacy_card("ibm", pin, pan)})
    st, tok = s.call("POST", f"/v1/cards/{card['id']}/control-tokens", key, {"type": "set_pin"})
    new_pin = random_pin(6, 12)
    st, _ = s.call("PUT", f"/v1/cards/{card['id']}/pin", key, {"control_token": tok["token"], "pin": new_pin})
    st, view = s.call("GET", f"/v1/cards/{card['id']}", key)
    t.check("a new PIN replaces the legacy data", view["pin"]["verification"], "stored")
    t.check("the new PIN verifies", verify(card["id"], pan, new_pin)[1].get("result"), "match")

    # Without migrate_legacy_pins a match captures nothing.
    other_key = other["api_key"]
    s.cli("programs", "update", other["program_id"], "--set", "allow_plaintext_pin=true")
    st, body = s.call("PATCH", "/v1/program", other_key, {"migrate_legacy_pins": False})
    t.check("migrate_legacy_pins is the program's", st, 200)
    okey = des.adjust_key_parity(rng.randbytes(16))
    oid = s.cli("pin-verification-keys", "import", "--program", other["program_id"], "--name", "v",
                "--method", "visa_pvv", "--component", okey.hex())["pin_verification_key_id"]
    ozk = rng.randbytes(16)
    ozid = s.cli("zone-keys", "import", "--name", "o", "--algorithm", "aes128", "--component", ozk.hex(),
                 "--program", other["program_id"])["zone_key_id"]
    pan, pin = luhn_pan(16), random_pin(4, 8)
    st, card = s.call("POST", "/v1/cards", other_key, {"pan": pan, "pin": {
        "pvv": legacy.generate_visa_pvv(okey, "1", pin[:4], pan), "pvki": "1", "pin_verification_key_id": oid}})
    for _ in range(2):
        st, body = s.call("POST", f"/v1/cards/{card['id']}/pin/verify", other_key, {
            "pin_block": encipher("iso_4", "aes128", ozk, pin, pan), "format": "iso_4", "zone_key_id": ozid})
        t.check("match without capture", body.get("result"), "match")
    st, view = s.call("GET", f"/v1/cards/{card['id']}", other_key)
    t.check("still legacy", view["pin"]["verification"], "visa_pvv")
    # Another program's PVK is not this one's.
    st, body = s.call("POST", "/v1/cards", key, {"pan": luhn_pan(16), "pin": {
        "pvv": "1234", "pvki": "1", "pin_verification_key_id": oid}})
    t.check("another program's PVK", (st, body.get("code")), (404, "not_found"))

    # Malformed legacy data: refused, nothing made.
    before = len(s.call("GET", "/v1/cards?limit=100", key)[1]["data"])
    ibm_id = ibm[0][0]
    for bad in ({"pvv": "123", "pvki": "1", "pin_verification_key_id": visa_id},
                {"pvv": "12345", "pvki": "1", "pin_verification_key_id": visa_id},
                {"pvv": "1234", "pvki": "12", "pin_verification_key_id": visa_id},
                {"pvv": "1234", "pin_verification_key_id": visa_id},
                {"pvv": "1234", "pvki": "1", "pin_verification_key_id": ibm_id},
                {"ibm3624_offset": "12345", "pin_verification_key_id": ibm_id},
                {"ibm3624_offset": "1234", "pin_verification_key_id": visa_id},
                {"pvv": "1234", "pvki": "1"},
                {"pvv": "1234", "pvki": "1", "pin_verification_key_id": visa_id, "pin": "1234"}):
        st, body = s.call("POST", "/v1/cards", key, {"pan": luhn_pan(16), "pin": bad})
        t.check(f"refused {sorted(bad)}", (st, body.get("code")), (422, "invalid_request"))
    st, body = s.call("POST", "/v1/cards", key, {"pan": luhn_pan(16), "pin": {
        "pvv": "1234", "pvki": "1", "pin_verification_key_id": "pvk_nosuchkeyatall0000000"}})
    t.check("an unknown PVK", (st, body.get("code")), (404, "not_found"))
    t.check("refused cards were not made", len(s.call("GET", "/v1/cards?limit=100", key)[1]["data"]), before)

    # ---- bulk import -----------------------------------------------------------
    import json as _json
    import os
    import tempfile
    lines, expect = [], {}
    vid, vkey = zones[("aes128", "verify")]
    for i in range(300):
        pan, pin = luhn_pan(16), random_pin(6, 12)
        form = i % 3
        if form == 0:
            p = {"pin_block": encipher("iso_4", "aes128", vkey, pin, pan), "format": "iso_4", "zone_key_id": vid}
        else:
            p = legacy_card("visa" if form == 1 else "ibm", pin, pan)
        lines.append(_json.dumps({"pan": pan, "external_id": f"bulk-{i}", "pin": p}))
        expect[f"bulk-{i}"] = (pan, pin)
    secret_pin = "90817263544"
    lines.insert(7, "{not json")
    lines.insert(20, _json.dumps({"pan": luhn_pan(16), "pin": {"pin": secret_pin}}))
    lines.insert(40, _json.dumps({"pan": "4111111111111112", "external_id": "bad-pan", "pin": {"pin": secret_pin}}))
    lines.insert(60, "")
    # A key twice (the PAN, as a gateway reading the first would not see the
    # card the import makes): refused like the API's 400, nothing made.
    dup_pan = luhn_pan(16)
    lines.insert(80, '{"pan":"%s","external_id":"dup-pan","pan":"%s","pin":{"pin":"%s"}}'
                 % (luhn_pan(16), dup_pan, secret_pin))
    d = tempfile.mkdtemp()
    path, rejects = os.path.join(d, "cards.jsonl"), os.path.join(d, "rejects.jsonl")
    open(path, "w").write("\n".join(lines) + "\n")
    out = s.cli("cards", "import", "--program", program, "--file", path, "--rejects", rejects)
    t.check("import counts", out, {"imported": 300, "skipped": 0, "rejected": 4})
    rej = [_json.loads(x) for x in open(rejects)]
    t.check("rejected lines named", [(r["line"], r["code"]) for r in rej],
            [(8, "invalid_request"), (21, "invalid_request"), (41, "invalid_pan"), (81, "invalid_request")])
    t.check("a key twice is named", "`pan` twice" in rej[3]["reason"], True)
    t.check("a key twice: nothing made",
            s.call("POST", "/v1/card-lookups", key, {"pan": dup_pan})[0], 404)
    t.check("no PIN data in the rejects file", secret_pin in open(rejects).read(), False)
    out = s.cli("cards", "import", "--program", program, "--file", path, "--rejects", rejects)
    t.check("a second run imports nothing", out, {"imported": 0, "skipped": 300, "rejected": 4})
    for ext in rng.sample(sorted(expect), 12):
        pan, pin = expect[ext]
        st, page = s.call("GET", f"/v1/cards?external_id={ext}", key)
        t.check(f"{ext} once", len(page["data"]), 1)
        t.check(f"{ext} verifies", verify(page["data"][0]["id"], pan, pin)[1].get("result"), "match")
    # Two runs of one new file at once: every card once.
    more = [_json.dumps({"pan": luhn_pan(16), "external_id": f"twice-{i}"}) for i in range(3000)]
    path2 = os.path.join(d, "more.jsonl")
    open(path2, "w").write("\n".join(more) + "\n")
    import subprocess
    runs = [subprocess.Popen([BIN, "cards", "import", "--program", program, "--file", path2,
                              "--data-dir", s.data], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for _ in range(2)]
    outs = [_json.loads(r.communicate(timeout=300)[0]) for r in runs]
    t.check("two runs at once import each card once",
            (sum(o["imported"] for o in outs), sum(o["skipped"] for o in outs)), (3000, 3000))
finally:
    s.stop(t)
t.finish()
