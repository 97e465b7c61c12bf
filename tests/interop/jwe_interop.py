#!/usr/bin/env python3
"""PIN encryption against an independent JOSE implementation (jwcrypto), over
HTTP against the real binary, as a program's client would use it from the
README and API.md:

- jwcrypto encrypts PINs to the published key (RSA-OAEP-256 and RSA-OAEP,
  A256GCM and A128CBC-HS256; bare digits, JSON with and without card_id/iat);
  the service decrypts them (PIN set, and a preset PIN at card creation);
- the service reveals PINs to a P-256 key made by jwcrypto (ECDH-ES, A256GCM);
  jwcrypto decrypts them and finds the PIN that was set;
- tampered, stale, misbound, unknown-key and unsupported-enc JWEs are each 422
  decryption_failed and use one attempt of the token, until it is used up;
- device keys that are not public P-256 points are refused with 422;
- after `pinvault keys rotate` the previous key is still published and still
  decrypts, and the new one is published first.

    python3 tests/interop/jwe_interop.py target/debug/pinvault

Prints `jwe interop: N passed, M failed`; exits non-zero on any failure.
"""
import base64
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from jwcrypto import jwe, jwk

BIN = sys.argv[1]
PAN = "4111111111111111"
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}", file=sys.stderr)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def good_pin(rng):
    while True:
        pin = "".join(rng.choice("0123456789") for _ in range(rng.choice([4, 5, 6])))
        steps = {int(b) - int(a) for a, b in zip(pin, pin[1:])}
        if steps in ({0}, {1}, {-1}) or PAN.endswith(pin):
            continue
        return pin


class Api:
    def __init__(self, base, key):
        self.base, self.key = base, key

    def call(self, method, path, body=None, auth=True):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if auth:
            req.add_header("Authorization", f"Bearer {self.key}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                status, raw = res.status, res.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        text = raw.decode()
        try:
            return status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return status, text

    def card(self, body=None):
        status, card = self.call("POST", "/v1/cards", body or {"pan": PAN})
        assert status == 201, (status, card)
        return card["id"]

    def token(self, card, kind):
        body = {"type": kind}
        if kind == "reveal_pin":
            body["cardholder_verification_method"] = "OTP"
        status, t = self.call("POST", f"/v1/cards/{card}/control-tokens", body)
        assert status == 201, (status, t)
        return t["token"]

    def set_pin(self, card, encrypted, token=None):
        token = token or self.token(card, "set_pin")
        return self.call("PUT", f"/v1/cards/{card}/pin",
                         {"control_token": token, "encrypted_pin": encrypted})

    def reveal(self, card, device_key, token=None):
        token = token or self.token(card, "reveal_pin")
        return self.call("POST", f"/v1/cards/{card}/pin/reveal",
                         {"control_token": token, "device_key": device_key})

    def jwks(self):
        status, doc = self.call("GET", "/v1/pin-encryption-keys", auth=False)
        assert status == 200, (status, doc)
        return doc["keys"]


def encrypt(key, kid, plaintext, alg="RSA-OAEP-256", enc="A256GCM"):
    token = jwe.JWE(plaintext.encode(), protected=json.dumps({"alg": alg, "enc": enc, "kid": kid}))
    token.add_recipient(key)
    return token.serialize(compact=True)


def decrypt_reveal(compact, device):
    token = jwe.JWE()
    token.deserialize(compact, key=device)
    return token.jose_header, json.loads(token.payload)


def main():
    rng = random.Random()
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env={**os.environ, "PINVAULT_LOG": "warn"},
        )
        try:
            base = None
            for line in server.stderr:
                if line.startswith("pinvault listening on "):
                    base = line.split()[-1]
                    break
            if base is None:
                sys.exit("server did not start")

            def cli(*args):
                out = subprocess.run([BIN, *args, "--data-dir", data],
                                     capture_output=True, text=True, check=True)
                return json.loads(out.stdout)

            created = cli("programs", "create", "--name", "jwe interop", "--mode", "live")
            api = Api(base, created["api_key"])
            run(api, rng, cli)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"jwe interop: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def run(api, rng, cli):
    # The published key: JWKS and PEM name the same key, and the kid is its
    # RFC 7638 thumbprint.
    keys = api.jwks()
    check(len(keys) == 1, "one key at first start")
    published = keys[0]
    check({k: published[k] for k in ("kty", "use", "alg")} ==
          {"kty": "RSA", "use": "enc", "alg": "RSA-OAEP-256"}, f"JWK members {published}")
    key = jwk.JWK(**published)
    kid = published["kid"]
    check(key.thumbprint() == kid, "kid is the RFC 7638 thumbprint")
    check(len(unb64url(published["n"])) * 8 == 2048, "2048-bit key by default")
    status, pem = api.call("GET", f"/v1/pin-encryption-keys/{kid}.pem", auth=False)
    check(status == 200 and jwk.JWK.from_pem(pem.encode()).thumbprint() == kid, "PEM is the same key")
    status, _ = api.call("GET", "/v1/pin-encryption-keys/nope.pem", auth=False)
    check(status == 404, "unknown kid PEM is 404")

    device = jwk.JWK.generate(kty="EC", crv="P-256")
    device_public = {**device.export_public(as_dict=True), "kid": "device-1"}

    def revealed(card):
        status, body = api.reveal(card, device_public)
        if status != 200:
            return None, None
        header, payload = decrypt_reveal(body["encrypted_pin"], device)
        check(header.get("alg") == "ECDH-ES" and header.get("enc") == "A256GCM"
              and header.get("epk", {}).get("crv") == "P-256" and header.get("kid") == "device-1",
              f"reveal JWE header {header}")
        check(payload.get("card_id") == card, "reveal plaintext names the card")
        return payload.get("pin"), payload

    # Our encryption, their decryption; their encryption, ours: every alg x enc,
    # with bare digits and JSON with and without card_id / iat.
    card = api.card()
    for alg in ("RSA-OAEP-256", "RSA-OAEP"):
        for enc in ("A256GCM", "A128CBC-HS256"):
            for shape in ("digits", "json", "json+card_id", "json+card_id+iat", "json+iat"):
                pin = good_pin(rng)
                if shape == "digits":
                    plain = pin
                else:
                    body = {"pin": pin}
                    if "card_id" in shape:
                        body["card_id"] = card
                    if "iat" in shape:
                        body["iat"] = int(time.time())
                    plain = json.dumps(body)
                status, body = api.set_pin(card, encrypt(key, kid, plain, alg, enc))
                check(status == 204, f"set {alg} {enc} {shape}: {status} {body}")
                got, _ = revealed(card)
                check(got == pin, f"reveal after {alg} {enc} {shape}")

    # A preset PIN at card creation (RSA-OAEP + A128CBC-HS256, as the issue's
    # acceptance asks), then a change and a reveal.
    pin = good_pin(rng)
    created = api.card({"pan": PAN, "pin": {"encrypted": encrypt(key, kid, pin, "RSA-OAEP", "A128CBC-HS256")}})
    got, _ = revealed(created)
    check(got == pin, "preset encrypted PIN at creation")
    status, body = api.call("POST", "/v1/cards", {"pan": PAN, "pin": {"encrypted": encrypt(key, kid, pin)[:-3] + "AAA"}})
    check(status == 422 and body["code"] == "decryption_failed", f"tampered preset PIN: {status} {body}")

    # Every failure is the same 422 and uses one attempt (5 by default), then the
    # token is used up.
    other = api.card()
    stranger = jwk.JWK.generate(kty="RSA", size=2048)
    valid = encrypt(key, kid, good_pin(rng))
    head, ek, iv, ct, tag = valid.split(".")
    ct_bytes = bytearray(unb64url(ct))
    ct_bytes[0] ^= 1
    failures = {
        "tampered": ".".join([head, ek, iv, b64url(bytes(ct_bytes)), tag]),
        "stale": encrypt(key, kid, json.dumps({"pin": good_pin(rng), "iat": int(time.time()) - 600})),
        "misbound": encrypt(key, kid, json.dumps({"pin": good_pin(rng), "card_id": other})),
        "unknown kid": encrypt(stranger, stranger.thumbprint(), good_pin(rng)),
        "unsupported enc": encrypt(key, kid, good_pin(rng), "RSA-OAEP-256", "A128GCM"),
    }
    token = api.token(card, "set_pin")
    before, _ = revealed(card)
    first = None
    for name, compact in failures.items():
        status, body = api.set_pin(card, compact, token)
        check(status == 422 and body.get("code") == "decryption_failed", f"{name}: {status} {body}")
        first = first or body
        check(body == first, f"{name}: the same answer as every other failure")
    status, body = api.set_pin(card, encrypt(key, kid, good_pin(rng)), token)
    check(status == 403 and body.get("code") == "token_exhausted", f"attempts used up: {status} {body}")
    after, _ = revealed(card)
    check(after == before, "refused JWEs changed nothing")

    # Device keys that are not public P-256 points: 422, and the token survives.
    p384 = jwk.JWK.generate(kty="EC", crv="P-384").export_public(as_dict=True)
    rsa = stranger.export_public(as_dict=True)
    private = device.export_private(as_dict=True)
    off_curve = dict(device.export_public(as_dict=True))
    y = bytearray(unb64url(off_curve["y"]))
    y[-1] ^= 1
    off_curve["y"] = b64url(bytes(y))
    token = api.token(card, "reveal_pin")
    for name, bad in (("P-384", p384), ("RSA", rsa), ("private part", private), ("off the curve", off_curve)):
        status, body = api.reveal(card, bad, token)
        check(status == 422 and body.get("code") == "invalid_request", f"device key {name}: {status} {body}")
    status, body = api.reveal(card, device_public, token)
    check(status == 200 and decrypt_reveal(body["encrypted_pin"], device)[1]["pin"] == before,
          "the token still reveals after refused device keys")

    # Rotation (every kind, as `pinvault keys rotate` with no argument): the new
    # key is published first within seconds, the old one still decrypts.
    rotated = cli("keys", "rotate")
    kinds = {r["kind"] for r in rotated["rotated"]}
    check(kinds == {"pin", "pan", "lookup", "webhook", "idempotency", "transport"},
          f"every kind rotated: {kinds}")
    deadline = time.time() + 10
    while time.time() < deadline:
        keys = api.jwks()
        if len(keys) == 2:
            break
        time.sleep(0.5)
    check([k["kid"] for k in keys][1:] == [kid] and keys[0]["kid"] != kid,
          f"new key first, old key still published: {[k['kid'] for k in keys]}")
    new_key, new_kid = jwk.JWK(**keys[0]), keys[0]["kid"]
    for k, name in ((key, kid), (new_key, new_kid)):
        for alg, enc in (("RSA-OAEP-256", "A256GCM"), ("RSA-OAEP", "A128CBC-HS256")):
            pin = good_pin(rng)
            status, body = api.set_pin(card, encrypt(k, name, pin, alg, enc))
            check(status == 204, f"after rotation, kid {'old' if k is key else 'new'} {alg} {enc}: {status} {body}")
            got, _ = revealed(card)
            check(got == pin, "reveal after rotation")


if __name__ == "__main__":
    main()
