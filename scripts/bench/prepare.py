#!/usr/bin/env python3
"""Prepares what the benchmarks replay, through the public API of a running
server: cards of one live program with known PINs, JWEs of those PINs to the
server's published transport key (jwcrypto, RSA-OAEP-256 + A256GCM,
{"pin","card_id"}, no `iat`, so they stay usable however long the run takes),
ISO 9564 format 4 PIN blocks under a zone key (psec), control tokens, and one
P-256 device key for reveal.

    prepare.py service BASE API_KEY COUNT ZONE_KEY_HEX OUT_DIR [ISSUER_KEY_SET_ID]
        For scripts/benchmark: COUNT cards (each its own PAN, a known PIN set
        in the clear, which the bench program allows), one line each in
        OUT_DIR/cards.txt:
            CARD_ID MATCH_BLOCK MISMATCH_BLOCK SET_JWE PAN
        MATCH_BLOCK / MISMATCH_BLOCK: format 4 blocks of the card's PIN and of
        another PIN under the AES-128 zone key; SET_JWE: replayable with any
        fresh set_pin token for that card. OUT_DIR/device.json: the device key.
        With ISSUER_KEY_SET_ID, also OUT_DIR/chips.txt: COUNT chip cards,
        `CARD_ID none` (nothing pending) or `CARD_ID pending` (a PIN set since,
        so `change_pin` is pending), alternately.

    prepare.py tokens BASE API_KEY COUNT OUT_DIR
        For scripts/bench-pin-encryption: COUNT cards (random PIN), each with a
        set_pin and a reveal_pin token (single use: one replayed request each),
        written as request lines to OUT_DIR/set.txt (PUT /v1/cards/{id}/pin with
        a JWE of a new PIN) and OUT_DIR/reveal.txt (POST …/pin/reveal to the
        device key). The bench program's token lifetimes are an hour.
"""
import http.client
import json
import random
import sys
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from jwcrypto import jwe, jwk

PAN = "4111111111111111"


class Api:
    """One keep-alive connection per thread to the server, with the API key."""

    def __init__(self, base, key):
        self.url = urllib.parse.urlparse(base)
        self.key = key
        self.local = threading.local()

    def conn(self):
        if not hasattr(self.local, "conn"):
            self.local.conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=60)
        return self.local.conn

    def create(self, path, body):
        """POST a JSON body; the answer must be 201."""
        conn = self.conn()
        conn.request("POST", path, json.dumps(body),
                     {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
        res = conn.getresponse()
        data = json.loads(res.read())
        assert res.status == 201, (res.status, data)
        return data

    def transport_key(self):
        conn = self.conn()
        conn.request("GET", "/v1/pin-encryption-keys")
        return json.loads(conn.getresponse().read())["keys"][0]


def pin(unlike=(), pan=PAN):
    """A random 4-digit PIN the default policy accepts for `pan`, not one of `unlike`."""
    while True:
        p = "".join(random.choice("0123456789") for _ in range(4))
        steps = {int(b) - int(a) for a, b in zip(p, p[1:])}
        if steps not in ({0}, {1}, {-1}) and p != pan[-4:] and p not in unlike:
            return p


def pin_jwe(published, card, p):
    """A compact JWE of {"pin","card_id"} to the published transport key."""
    token = jwe.JWE(json.dumps({"pin": p, "card_id": card}).encode(),
                    protected=json.dumps({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": published["kid"]}))
    token.add_recipient(jwk.JWK(**published))
    return token.serialize(compact=True)


def device_key():
    """The public half of a new P-256 key (the private half is not needed)."""
    return jwk.JWK.generate(kty="EC", crv="P-256").export_public(as_dict=True)


def prepare(count, one):
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def luhn_pan():
    """A random 16-digit PAN with a valid check digit (each card its own)."""
    body = [4] + [random.randrange(10) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(body)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return "".join(map(str, body)) + str((10 - total % 10) % 10)


def service(base, key, count, zone_hex, out, issuer_key_set=None):
    from psec import pinblock

    api, zone = Api(base, key), bytes.fromhex(zone_hex)
    published = api.transport_key()

    def one(_):
        pan = luhn_pan()
        p = pin(pan=pan)
        other = pin(unlike=(p,), pan=pan)
        card = api.create("/v1/cards", {"pan": pan, "pin": {"pin": p}})["id"]
        match = pinblock.encipher_pinblock_iso_4(zone, p, pan).hex().upper()
        mismatch = pinblock.encipher_pinblock_iso_4(zone, other, pan).hex().upper()
        return f"{card} {match} {mismatch} {pin_jwe(published, card, p)} {pan}\n"

    rows = prepare(count, one)
    with open(f"{out}/cards.txt", "w") as f:
        f.writelines(rows)
    if issuer_key_set:
        def chip(i):
            chip_pan = luhn_pan()
            card = api.create("/v1/cards", {"pan": chip_pan, "pin": {"pin": pin(pan=chip_pan)},
                                            "chip": {"issuer_key_set_id": issuer_key_set}})["id"]
            if i % 2 == 0:
                return f"{card} none\n"
            token = api.create(f"/v1/cards/{card}/control-tokens", {"type": "set_pin"})["token"]
            conn = api.conn()
            conn.request("PUT", f"/v1/cards/{card}/pin",
                         json.dumps({"control_token": token, "pin": pin(pan=chip_pan)}),
                         {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            res = conn.getresponse()
            res.read()
            assert res.status == 204, res.status
            return f"{card} pending\n"

        with open(f"{out}/chips.txt", "w") as f:
            f.writelines(prepare(count, chip))
    with open(f"{out}/device.json", "w") as f:
        f.write(json.dumps(device_key(), separators=(",", ":")))
    print(f"prepared {count} cards", file=sys.stderr)


def tokens(base, key, count, out):
    api = Api(base, key)
    published = api.transport_key()
    device = device_key()

    def one(_):
        card = api.create("/v1/cards", {"pan": PAN})["id"]
        st = api.create(f"/v1/cards/{card}/control-tokens", {"type": "set_pin"})["token"]
        rt = api.create(f"/v1/cards/{card}/control-tokens",
                        {"type": "reveal_pin", "cardholder_verification_method": "OTP"})["token"]
        set_body = json.dumps({"control_token": st, "encrypted_pin": pin_jwe(published, card, pin())},
                              separators=(",", ":"))
        reveal_body = json.dumps({"control_token": rt, "device_key": device}, separators=(",", ":"))
        return (f"PUT /v1/cards/{card}/pin {set_body}\n", f"POST /v1/cards/{card}/pin/reveal {reveal_body}\n")

    rows = prepare(count, one)
    with open(f"{out}/set.txt", "w") as f:
        f.writelines(r[0] for r in rows)
    with open(f"{out}/reveal.txt", "w") as f:
        f.writelines(r[1] for r in rows)
    print(f"prepared {count} set and {count} reveal requests", file=sys.stderr)


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) in (6, 7) and args[0] == "service":
        service(args[1], args[2], int(args[3]), args[4], args[5], args[6] if len(args) == 7 else None)
    elif len(args) == 5 and args[0] == "tokens":
        tokens(args[1], args[2], int(args[3]), args[4])
    else:
        sys.exit(__doc__)
