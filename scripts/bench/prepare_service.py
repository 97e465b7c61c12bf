#!/usr/bin/env python3
"""Prepares the cards scripts/benchmark loads: COUNT cards of one live program
(PAN 4111111111111111, a known PIN set in the clear, which the bench program
allows), and for each card one line of cards.txt:

    CARD_ID MATCH_BLOCK MISMATCH_BLOCK SET_JWE

MATCH_BLOCK / MISMATCH_BLOCK are ISO 9564 format 4 PIN blocks of the card's PIN
and of another PIN, enciphered under the AES-128 zone key ZONE_KEY_HEX (psec);
SET_JWE is a compact JWE (jwcrypto, RSA-OAEP-256 + A256GCM) of
{"pin","card_id"} to the server's published transport key, replayable with any
fresh set_pin token for that card (no `iat`). device.json is the public half of
a P-256 device key for reveal.

    prepare_service.py BASE API_KEY COUNT ZONE_KEY_HEX OUT_DIR
"""
import http.client
import json
import random
import sys
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from jwcrypto import jwe, jwk
from psec import pinblock

BASE, KEY, COUNT, ZONE, OUT = sys.argv[1], sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4]), sys.argv[5]
PAN = "4111111111111111"
url = urllib.parse.urlparse(BASE)
local = threading.local()


def call(method, path, body):
    if not hasattr(local, "conn"):
        local.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    local.conn.request(method, path, json.dumps(body),
                       {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    res = local.conn.getresponse()
    data = json.loads(res.read())
    assert res.status == 201, (res.status, data)
    return data


conn = http.client.HTTPConnection(url.hostname, url.port)
conn.request("GET", "/v1/pin-encryption-keys")
published = json.loads(conn.getresponse().read())["keys"][0]
rsa = jwk.JWK(**published)
device = jwk.JWK.generate(kty="EC", crv="P-256").export_public(as_dict=True)


def pin():
    while True:
        p = "".join(random.choice("0123456789") for _ in range(4))
        steps = {int(b) - int(a) for a, b in zip(p, p[1:])}
        if steps not in ({0}, {1}, {-1}) and p != PAN[-4:]:
            return p


def one(_):
    p = pin()
    other = pin()
    while other == p:
        other = pin()
    card = call("POST", "/v1/cards", {"pan": PAN, "pin": {"pin": p}})["id"]
    match = pinblock.encipher_pinblock_iso_4(ZONE, p, PAN).hex().upper()
    mismatch = pinblock.encipher_pinblock_iso_4(ZONE, other, PAN).hex().upper()
    token = jwe.JWE(json.dumps({"pin": p, "card_id": card}).encode(),
                    protected=json.dumps({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": published["kid"]}))
    token.add_recipient(rsa)
    return f"{card} {match} {mismatch} {token.serialize(compact=True)}\n"


with ThreadPoolExecutor(8) as pool:
    rows = list(pool.map(one, range(COUNT)))
with open(f"{OUT}/cards.txt", "w") as f:
    f.writelines(rows)
with open(f"{OUT}/device.json", "w") as f:
    f.write(json.dumps(device, separators=(",", ":")))
print(f"prepared {COUNT} cards", file=sys.stderr)
