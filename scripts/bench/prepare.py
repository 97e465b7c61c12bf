#!/usr/bin/env python3
"""Prepares the requests scripts/bench-pin-encryption replays: COUNT cards of a
live program, each with a set_pin token and a JWE (jwcrypto, RSA-OAEP-256 +
A256GCM, {"pin","card_id"}) for PUT /v1/cards/{id}/pin, and a reveal_pin
token for POST /v1/cards/{id}/pin/reveal with one device key. Tokens are made
before the timed runs (a token is single use); their own cost is measured
separately. The prepared tokens live reveal_token_ttl_s / set_token_ttl_s, set
to an hour for the bench program.

    prepare.py BASE API_KEY COUNT OUT_DIR
"""
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from jwcrypto import jwe, jwk

BASE, KEY, COUNT, OUT = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
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
        if steps not in ({0}, {1}, {-1}) and p != "1111":
            return p


def one(_):
    card = call("POST", "/v1/cards", {"pan": "4111111111111111"})["id"]
    st = call("POST", f"/v1/cards/{card}/control-tokens", {"type": "set_pin"})["token"]
    rt = call("POST", f"/v1/cards/{card}/control-tokens",
              {"type": "reveal_pin", "cardholder_verification_method": "OTP"})["token"]
    # No `iat`: the prepared JWEs may be used more than 5 minutes after they were made.
    token = jwe.JWE(json.dumps({"pin": pin(), "card_id": card}).encode(),
                    protected=json.dumps({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": published["kid"]}))
    token.add_recipient(rsa)
    set_body = json.dumps({"control_token": st, "encrypted_pin": token.serialize(compact=True)},
                          separators=(",", ":"))
    reveal_body = json.dumps({"control_token": rt, "device_key": device}, separators=(",", ":"))
    return (f"PUT /v1/cards/{card}/pin {set_body}", f"POST /v1/cards/{card}/pin/reveal {reveal_body}")


with ThreadPoolExecutor(8) as pool:
    rows = list(pool.map(one, range(COUNT)))
with open(f"{OUT}/set.txt", "w") as f:
    f.writelines(r[0] + "\n" for r in rows)
with open(f"{OUT}/reveal.txt", "w") as f:
    f.writelines(r[1] + "\n" for r in rows)
print(f"prepared {COUNT} set and {COUNT} reveal requests", file=sys.stderr)
