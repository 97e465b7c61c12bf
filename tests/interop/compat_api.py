#!/usr/bin/env python3
"""Black-box: the seed-compatible routes (/compat/marqeta/v3, /compat/thredd,
/compat/spidr/v1, /compat/stripe/v1, /compat/enfuce/v1) replayed as each
vendor's own document sends them, with the effect checked through the v1 API.

Starts `pinvault serve` on a fresh data directory (private webhook targets
allowed, 1 s retries, a fixed public URL) and a webhook receiver on loopback.
With random PANs and PINs (4 to 12 digits; half the rounds 8 to 12 digits):

- Marqeta: POST /pins/controltoken (SET_PIN, then REVEAL_PIN), PUT /pins, POST
  /pins/reveal with a cardholder verification method; the PIN set is the PIN
  the sandbox verifies, the reveal shows it, and `pin.revealed` records the
  method. Type defaults to SET_PIN; a token redeemed twice (token_used), an
  older token (token_superseded), a token of the other type (token_invalid);
  malformed, weak and wrong-length PINs, a missing or unknown method, an
  unknown type, malformed JSON and another media type: each in Marqeta's error
  shape, and nothing changed; plaintext_not_allowed and reveal_disabled; the
  tokens' lifetimes are the program's; an external_id names a card of the
  caller's program only (409 card_ambiguous where two have it), also one shaped
  like a card id, and another program's card id answers as a missing one.
- Thredd: POST /cards/{publicToken}/pin with the seed's literal body
  (`{"pin": 0000}`, a bare number with leading zeros), a JSON string and a JSON
  number; GET the PIN; GET its status (remainingTries a string); unblock with
  {"description","updatedBy"} before and after blocking (wrong sandbox
  verifications), 415 without a JSON content type, each unblock a v1
  `pin.fail_count_reset`; remainingTries follows max_tries; problem+json errors.
- Spidr: GET /card/{id}/pinChangeToken (url, expiresAt, attemptsRemaining from
  the program), the set widget page, the PIN staged through the widget's own
  call or PUT /v1/cards/{id}/pin with a JWE (202 staged although the program is
  `direct`), the old PIN still verifying until POST commitPinChange, a second
  commit 409 nothing_staged; resetPinFailCount before and after blocking; GET
  /card/{id} (pinFailCount, pinFailDate, status); a webhook endpoint of format
  `spidr` receiving exactly Spidr's names (card.resetPin for every reset and
  unblock, whichever route), signed as v1 webhooks are, and a v1 endpoint
  receiving `pin.fail_count_reset`.
- Stripe: GET and POST /issuing/cards/{id} with form bodies and HTTP Basic as
  curl -u sends it; `pin[encrypted_number]` a JWE made by jwcrypto (RSA-OAEP +
  A128CBC-HS256, the published kid); the card blocked by wrong sandbox PINs
  shows `inactive` and `status=active` reactivates it and unblocks its PIN
  (`pin.fail_count_reset`);
  `status=inactive`; a suspended card shows inactive; livemode; an unknown
  parameter (400), a JSON body (415), an undecryptable JWE and a weak PIN
  (422), in Stripe's error shape, changing nothing.
- Enfuce: POST /plastics/{id}/pin-control (no body, or a verification method):
  a reveal token living at most 30 s (10 s where reveal_token_ttl_s=10), method
  OTHER unless named; the device POSTs controlId to pinURL (as a form field, or
  as step 6a writes it, `pinURL?controlId=…`), gets the reveal page, does what
  its script does (POST /widgets/api/pin-reveal with a P-256 key) and
  decrypts the JWE with jwcrypto: the PIN that was set; a used control id, and
  one 11 s old where reveal_token_ttl_s=10, show -10.
- Every compat route in /openapi.json with its vendor's tag; 401 in each
  vendor's shape; the set widget without a token (400, HTML); no PIN of 8+
  digits, no PAN and no control token in the server's log.

    python3 tests/interop/compat_api.py target/debug/pinvault [ROUNDS [STEPS]]

(STEPS: a comma-separated subset of openapi,widget,marqeta,thredd,spidr,stripe,enfuce.)

Prints `compat: N passed, M failed`; exits non-zero on a failure or no checks.
"""
import base64
import collections
import datetime
import hashlib
import hmac
import html
import http.client
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jwcrypto import jwe, jwk

from common import Checks, Server, luhn_pan, rng

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
PUBLIC = "https://pinvault.compat.test"
t = Checks("compat")

METHODS = ["BIOMETRIC_FACE", "BIOMETRIC_FINGERPRINT", "LOGIN", "EXP_CVV", "OTP_CVV", "OTP", "OTHER"]
SPIDR_NAMES = ["card.pinToken", "account.pinChangeStageSuccess", "account.pinChangeStageFail",
               "card.pinChanged", "account.pinChange", "card.resetPin"]
MQ, TH, SP, ST, EN = ("/compat/marqeta/v3", "/compat/thredd", "/compat/spidr/v1",
                      "/compat/stripe/v1", "/compat/enfuce/v1")

PINS, PANS, TOKENS = [], [], []  # what must never reach the server's log

# ---------------------------------------------------------------- helpers


def good_pin(pan, lo=4, hi=4, lead_zero=None):
    """A PIN the default policy accepts: not all equal, not a run, not the PAN's
    tail; with `lead_zero` True starting with 0, False not starting with 0."""
    while True:
        n = rng.randint(lo, hi)
        pin = "".join(str(rng.randrange(10)) for _ in range(n))
        if lead_zero is not None and (pin[0] == "0") != lead_zero:
            continue
        steps = {int(b) - int(a) for a, b in zip(pin, pin[1:])}
        if steps in ({0}, {1}, {-1}) or pan.endswith(pin):
            continue
        if n >= 8:
            PINS.append(pin)
        return pin


def lengths(i):
    """Even rounds: 4 to 6 digits (4 in the first); odd rounds: 8 to 12."""
    if i % 2:
        return 8, 12
    return (4, 4) if i == 0 else (4, 6)


def wrong_pin(pin):
    return "".join(str((int(d) + 5) % 10) for d in pin)


class Resp:
    def __init__(self, status, headers, raw):
        self.status, self.headers, self.raw = status, headers, raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    @property
    def ctype(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def __repr__(self):
        return f"<{self.status} {self.ctype} {self.raw[:300]!r}>"


_UNSET = object()


def call(method, path, key=None, *, auth="bearer", body=_UNSET, raw=None, form=None, ctype=None,
         base=None):
    """One HTTP request with full control of its headers (http.client adds no
    Content-Type of its own). `body` is sent as JSON, `form` as a form (a dict,
    or a string sent as it is), `raw` as bytes with `ctype` (None: no header)."""
    url = urllib.parse.urlsplit((base or S.base) + path)
    headers = {}
    data = None
    if body is not _UNSET:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif form is not None:
        data = (form if isinstance(form, str) else urllib.parse.urlencode(form)).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif raw is not None:
        data = raw
    if ctype is not None:
        headers["Content-Type"] = ctype
    if key is not None:
        if auth == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        else:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        target = url.path + ("?" + url.query if url.query else "")
        conn.request(method, target, body=data, headers=headers)
        res = conn.getresponse()
        return Resp(res.status, res.headers, res.read())
    finally:
        conn.close()


def keys_of(obj):
    return sorted(obj.keys()) if isinstance(obj, dict) else obj


def ts(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def is_rfc3339(text):
    try:
        return isinstance(text, str) and "T" in text and ts(text).tzinfo is not None
    except ValueError:
        return False


def is_token(value):
    if isinstance(value, str) and value.startswith("pct_"):
        TOKENS.append(value)
        return True
    return False


# The vendors' error shapes, checked as one tuple each (one line when it fails).
def marqeta_err(what, r, status, code):
    j = r.json if isinstance(r.json, dict) else {}
    t.check(f"marqeta: {what} (status, shape, error_code)",
            (r.status, keys_of(r.json), j.get("error_code"),
             isinstance(j.get("error_message"), str) and bool(j.get("error_message"))),
            (status, ["error_code", "error_message"], code, True))


def problem(what, r, status, code):
    j = r.json if isinstance(r.json, dict) else {}
    t.check(f"{what} (status, problem+json, members, code)",
            (r.status, r.ctype, {"type", "title", "status", "detail", "code"} <= set(j),
             j.get("status"), j.get("code")),
            (status, "application/problem+json", True, status, code))


def stripe_err(what, r, status, code, kind="invalid_request_error"):
    j = r.json if isinstance(r.json, dict) else {}
    e = j.get("error") if isinstance(j.get("error"), dict) else {}
    t.check(f"stripe: {what} (status, shape, type, code)",
            (r.status, keys_of(r.json), {"type", "code", "message"} <= set(e), e.get("type"),
             e.get("code")),
            (status, ["error"], True, kind, code))


# v1, to check the effect.
def new_card(key, pan=None, **extra):
    pan = pan or luhn_pan(16)
    PANS.append(pan)
    r = call("POST", "/v1/cards", key, body={"pan": pan, **extra})
    if r.status != 201:
        raise AssertionError(f"POST /v1/cards: {r}")
    return r.json["id"], pan


def verify(key, card, pin):
    r = call("POST", f"/v1/test/cards/{card}/pin/verify", key, body={"pin": pin})
    return r.json.get("result") if r.status == 200 else r


def pin_status(key, card):
    return call("GET", f"/v1/cards/{card}/pin/status", key).json


def card_status(key, card):
    return call("GET", f"/v1/cards/{card}", key).json.get("status")


def events(key, card, kind):
    r = call("GET", f"/v1/events?card_id={card}&type={kind}&limit=100", key)
    return r.json["data"] if r.status == 200 else []


def lifetime(event):
    """Seconds from a pin.token_created event's creation to its token's expiry."""
    try:
        return (ts(event["data"]["expires_at"]) - ts(event["created_at"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def block(key, card, pin, tries=3):
    results = [verify(key, card, wrong_pin(pin)) for _ in range(tries)]
    return pin_status(key, card).get("status"), results


def v1_set(key, card, pin):
    r = call("POST", f"/v1/cards/{card}/control-tokens", key, body={"type": "set_pin"})
    is_token(r.json["token"])
    r = call("PUT", f"/v1/cards/{card}/pin", key, body={"control_token": r.json["token"], "pin": pin})
    if r.status != 204:
        raise AssertionError(f"v1 set: {r}")


def encrypt(pin_or_json, alg="RSA-OAEP", enc="A128CBC-HS256"):
    keys = call("GET", "/v1/pin-encryption-keys").json["keys"]
    pub = jwk.JWK(**keys[0])
    token = jwe.JWE(pin_or_json.encode(),
                    protected=json.dumps({"alg": alg, "enc": enc, "kid": keys[0]["kid"]}))
    token.add_recipient(pub)
    return token.serialize(compact=True)


def program(name, mode="test", **settings):
    created = S.cli("programs", "create", "--name", name, "--mode", mode)
    if settings:
        pairs = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()]
        S.cli("programs", "update", created["program_id"], "--set", *pairs)
    return created["api_key"]


def unauthorized(vendor, method, path, body_kind, shape):
    """No key, a wrong Bearer key and a wrong Basic key: 401 in the vendor's shape."""
    kw = {"form": {}} if body_kind == "form" else ({"body": {}} if body_kind == "json" else {})
    for label, key, auth in (("no key", None, "bearer"), ("wrong Bearer key", "pv_test_nope", "bearer"),
                             ("wrong Basic key", "pv_test_nope", "basic")):
        r = call(method, path, key, auth=auth, **kw)
        shape(f"{vendor} {method} {path}: {label}", r, 401, "unauthorized")


# ---------------------------------------------------------------- webhooks

received = []  # (path, signature header, body bytes)
hook_lock = threading.Lock()


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with hook_lock:
            received.append((self.path, self.headers.get("Pinvault-Signature", ""), body))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def signed(secret, header, raw_body, tolerance_s=300):
    """The README's receiver check."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        stamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - stamp) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def deliveries(path):
    """Unique bodies delivered to `path`, by event id and type (a commit's
    card.pinChanged and account.pinChange are one v1 event: the same id)."""
    with hook_lock:
        got = [(sig, body) for p, sig, body in received if p == path]
    seen, out = set(), []
    for sig, body in got:
        try:
            event = json.loads(body)
        except ValueError:
            out.append((sig, body, None))
            continue
        if (event.get("id"), event.get("type")) not in seen:
            seen.add((event.get("id"), event.get("type")))
            out.append((sig, body, event))
    return out


def by_card(path):
    counts = collections.defaultdict(collections.Counter)
    for _, _, event in deliveries(path):
        if event:
            counts[(event.get("data") or {}).get("card_id")][event.get("type")] += 1
    return counts


# ---------------------------------------------------------------- Marqeta


def marqeta(main, noplain, noreveal):
    for i in range(ROUNDS):
        ext = f"mq-{i}-{rng.getrandbits(32):08x}"
        card, pan = new_card(main, external_id=ext)
        name = ext if i % 2 else card
        auth = "basic" if i % 2 == 0 else "bearer"
        pin = good_pin(pan, *lengths(i))
        what = f"marqeta round {i} ({'external_id' if i % 2 else 'card id'}, {auth}, {len(pin)} digits)"
        # The document's order: a control token first, then PUT /pins with it.
        r = call("POST", MQ + "/pins/controltoken", main, auth=auth,
                 body={"card_token": name, "controltoken_type": "SET_PIN"})
        t.check(f"{what}: SET_PIN control token", (r.status, keys_of(r.json), is_token((r.json or {}).get("control_token"))),
                (201, ["control_token"], True))
        token = (r.json or {}).get("control_token")
        r = call("PUT", MQ + "/pins", main, auth=auth, body={"control_token": token, "pin": pin})
        t.check(f"{what}: PUT /pins", (r.status, r.raw), (204, b""))
        t.check(f"{what}: the PIN set is the PIN verified", verify(main, card, pin), "match")
        # Reveal: a REVEAL_PIN token, then POST /pins/reveal with a method.
        r = call("POST", MQ + "/pins/controltoken", main, auth=auth,
                 body={"card_token": name, "controltoken_type": "REVEAL_PIN"})
        t.check(f"{what}: REVEAL_PIN control token", (r.status, is_token((r.json or {}).get("control_token"))), (201, True))
        method = METHODS[i % len(METHODS)] if i < len(METHODS) else rng.choice(METHODS)
        r = call("POST", MQ + "/pins/reveal", main, auth=auth,
                 body={"control_token": (r.json or {}).get("control_token"), "cardholder_verification_method": method})
        t.check(f"{what}: POST /pins/reveal shows the PIN set", (r.status, r.json), (200, {"pin": pin}))
        revealed = events(main, card, "pin.revealed")
        t.check(f"{what}: pin.revealed records the method (and a clear reveal)",
                [(e["data"].get("cardholder_verification_method"), e["data"].get("to")) for e in revealed],
                [(method, "clear")])

    # Once: the default type, redeemed once, superseded, the other type.
    card, pan = new_card(main, external_id=f"mq-x-{rng.getrandbits(32):08x}")
    r = call("POST", MQ + "/pins/controltoken", main, body={"card_token": card})
    t.check("marqeta: controltoken without a type", (r.status, is_token((r.json or {}).get("control_token"))), (201, True))
    default = (r.json or {}).get("control_token")
    made = events(main, card, "pin.token_created")
    t.check("marqeta: the type defaults to SET_PIN (event token_type)",
            [e["data"].get("token_type") for e in made], ["set_pin"])
    settings = call("GET", "/v1/program", main).json["settings"]
    life = lifetime(made[0]) if made else None
    t.check("marqeta: a SET_PIN token lives set_token_ttl_s, as in v1",
            life is not None and abs(life - settings["set_token_ttl_s"]) <= 1, True)
    r = call("POST", MQ + "/pins/reveal", main, body={"control_token": default, "cardholder_verification_method": "OTP"})
    marqeta_err("a SET_PIN token at /pins/reveal", r, 403, "token_invalid")
    pin = good_pin(pan)
    r = call("PUT", MQ + "/pins", main, body={"control_token": default, "pin": pin})
    t.check("marqeta: PUT /pins with the default-type token", r.status, 204)
    other = good_pin(pan)
    r = call("PUT", MQ + "/pins", main, body={"control_token": default, "pin": other})
    marqeta_err("the same token a second time", r, 403, "token_used")
    t.check("marqeta: a used token changes nothing", verify(main, card, pin), "match")
    older = call("POST", MQ + "/pins/controltoken", main, body={"card_token": card, "controltoken_type": "SET_PIN"}).json
    newer = call("POST", MQ + "/pins/controltoken", main, body={"card_token": card, "controltoken_type": "SET_PIN"}).json
    is_token(older.get("control_token")), is_token(newer.get("control_token"))
    r = call("PUT", MQ + "/pins", main, body={"control_token": older.get("control_token"), "pin": other})
    marqeta_err("an older token after a newer one", r, 403, "token_superseded")
    t.check("marqeta: a superseded token changes nothing", verify(main, card, pin), "match")

    # Bad input on the newer token: Marqeta's shape, nothing changed, the token still good.
    before = pin_status(main, card)
    newer = newer.get("control_token")
    # (Three refusals: each uses one of the token's five attempts.)
    for label, bad, code in (("a 3-digit PIN", "123", "invalid_pin"), ("a PIN with a letter", "12a4", "invalid_pin"),
                             ("a weak PIN", "1111", "weak_pin")):
        r = call("PUT", MQ + "/pins", main, body={"control_token": newer, "pin": bad})
        marqeta_err(f"PUT /pins with {label}", r, 422, code)
    after = pin_status(main, card)
    t.check("marqeta: refused PINs changed nothing (PIN status)",
            {k: after.get(k) for k in ("set_by", "updated_at", "fail_count")},
            {k: before.get(k) for k in ("set_by", "updated_at", "fail_count")})
    t.check("marqeta: refused PINs changed nothing (the old PIN verifies)", verify(main, card, pin), "match")
    third = good_pin(pan)
    r = call("PUT", MQ + "/pins", main, body={"control_token": newer, "pin": third})
    t.check("marqeta: the token still sets a good PIN after refusals", r.status, 204)
    t.check("marqeta: ... which verifies", verify(main, card, third), "match")
    last = call("POST", MQ + "/pins/controltoken", main, body={"card_token": card}).json.get("control_token")
    is_token(last)
    before = pin_status(main, card)
    r = call("PUT", MQ + "/pins", main, body={"control_token": last, "pin": "1357913579135"})
    marqeta_err("PUT /pins with a 13-digit PIN", r, 422, "invalid_pin")
    r = call("PUT", MQ + "/pins", main, body={"control_token": last})
    t.check("marqeta: PUT /pins without a pin (4xx invalid_request, Marqeta shape)",
            (r.status in (400, 422), keys_of(r.json), (r.json or {}).get("error_code")),
            (True, ["error_code", "error_message"], "invalid_request"))
    after = pin_status(main, card)
    t.check("marqeta: ... changed nothing (PIN status)", {k: after.get(k) for k in ("set_by", "updated_at")},
            {k: before.get(k) for k in ("set_by", "updated_at")})

    # Reveal: the method is required and one of the seven; a refusal spends nothing.
    rv = call("POST", MQ + "/pins/controltoken", main, body={"card_token": card, "controltoken_type": "REVEAL_PIN"}).json
    rv = rv.get("control_token")
    is_token(rv)
    made = [e for e in events(main, card, "pin.token_created") if e["data"].get("token_type") == "reveal_pin"]
    life = lifetime(made[0]) if made else None
    t.check("marqeta: a REVEAL_PIN token lives reveal_token_ttl_s, as in v1",
            life is not None and abs(life - settings["reveal_token_ttl_s"]) <= 1, True)
    r = call("POST", MQ + "/pins/reveal", main, body={"control_token": rv})
    marqeta_err("/pins/reveal without a method", r, 422, "invalid_request")
    r = call("POST", MQ + "/pins/reveal", main, body={"control_token": rv, "cardholder_verification_method": "FACE_ID"})
    marqeta_err("/pins/reveal with an unknown method", r, 422, "invalid_request")
    r = call("PUT", MQ + "/pins", main, body={"control_token": rv, "pin": good_pin(pan)})
    marqeta_err("a REVEAL_PIN token at PUT /pins", r, 403, "token_invalid")
    r = call("POST", MQ + "/pins/reveal", main, body={"control_token": rv, "cardholder_verification_method": "LOGIN"})
    t.check("marqeta: the reveal token still works after refused methods", (r.status, r.json), (200, {"pin": third}))
    r = call("POST", MQ + "/pins/reveal", main, body={"control_token": rv, "cardholder_verification_method": "LOGIN"})
    marqeta_err("a reveal token a second time", r, 403, "token_used")

    # external_id names a card among the caller's program's cards only.
    shared = f"shared-{rng.getrandbits(32):08x}"
    theirs, _ = new_card(noplain, external_id=shared)
    ours, ours_pan = new_card(main, external_id=shared)
    r = call("POST", MQ + "/pins/controltoken", main, body={"card_token": shared})
    tok = (r.json or {}).get("control_token")
    t.check("marqeta: an external_id another program also uses names our card", (r.status, is_token(tok)), (201, True))
    pin = good_pin(ours_pan)
    call("PUT", MQ + "/pins", main, body={"control_token": tok, "pin": pin})
    t.check("marqeta: ... and sets our card's PIN", (verify(main, ours, pin), verify(noplain, theirs, "0000")),
            ("match", "match"))
    # Another program's card id answers as a card id that exists nowhere.
    nowhere = "card_" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(24))
    a = call("POST", MQ + "/pins/controltoken", main, body={"card_token": theirs})
    b = call("POST", MQ + "/pins/controltoken", main, body={"card_token": nowhere})
    t.check("marqeta: another program's card id is answered as one that exists nowhere",
            (a.status, a.json), (b.status, b.json))
    # An external_id shaped like a card id (no card has that id) still names its card.
    lookalike, _ = new_card(main, external_id=nowhere)
    r = call("POST", MQ + "/pins/controltoken", main, body={"card_token": nowhere})
    t.check("marqeta: a card whose external_id looks like a card id is named by it",
            (r.status, is_token((r.json or {}).get("control_token"))), (201, True))
    made = events(main, lookalike, "pin.token_created")
    t.check("marqeta: ... and the token is for that card", len(made), 1 if r.status == 201 else 0)
    twice = f"twice-{rng.getrandbits(32):08x}"
    new_card(main, external_id=twice)
    new_card(main, external_id=twice)
    r = call("POST", MQ + "/pins/controltoken", main, body={"card_token": twice})
    marqeta_err("an external_id two of the program's cards have", r, 409, "card_ambiguous")

    # Requests that cannot be read, unknown cards, other types.
    r = call("POST", MQ + "/pins/controltoken", main, body={"card_token": card, "controltoken_type": "CHANGE_PIN"})
    marqeta_err("an unknown controltoken_type", r, 422, "invalid_request")
    r = call("POST", MQ + "/pins/controltoken", main, body={"card_token": "card_doesnotexist"})
    marqeta_err("an unknown card_token", r, 404, "not_found")
    stranger, _ = new_card(noplain)
    r = call("POST", MQ + "/pins/controltoken", main, body={"card_token": stranger})
    marqeta_err("another program's card", r, 404, "not_found")
    r = call("POST", MQ + "/pins/controltoken", main, raw=b'{"card_token": ', ctype="application/json")
    marqeta_err("malformed JSON", r, 400, "invalid_request")
    r = call("POST", MQ + "/pins/controltoken", main, raw=json.dumps({"card_token": card}).encode(), ctype="text/plain")
    marqeta_err("a text/plain body", r, 415, "unsupported_media_type")
    r = call("POST", MQ + "/pins/controltoken", main,
             raw=b'{"card_token":"%s","card_token":"card_x"}' % card.encode(), ctype="application/json")
    marqeta_err("a key twice in the body", r, 400, "invalid_request")
    r = call("POST", MQ + "/pins/controltoken", main,
             raw=json.dumps({"card_token": card, "pad": "a" * 70000}).encode(), ctype="application/json")
    marqeta_err("a body over 64 KiB", r, 413, "payload_too_large")
    r = call("GET", MQ + "/pins", main)
    t.check("marqeta: a method the route does not take (405, Marqeta shape)", (r.status, keys_of(r.json)),
            (405, ["error_code", "error_message"]))
    busy, _ = new_card(main)
    for _ in range(200):  # the per-card token limit (120/min by default)
        r = call("POST", MQ + "/pins/controltoken", main, body={"card_token": busy})
        if r.status != 201:
            break
        is_token(r.json.get("control_token"))
    marqeta_err("control tokens beyond the card's limit", r, 429, "rate_limited")
    unauthorized("marqeta", "POST", MQ + "/pins/controltoken", "json", lambda w, r, s, c: marqeta_err(w, r, s, c))
    unauthorized("marqeta", "PUT", MQ + "/pins", "json", lambda w, r, s, c: marqeta_err(w, r, s, c))
    t.check("marqeta: refused requests changed nothing", verify(main, card, third), "match")

    # The program's rules hold: plaintext and reveal settings.
    card, pan = new_card(noplain)
    r = call("POST", MQ + "/pins/controltoken", noplain, body={"card_token": card, "controltoken_type": "SET_PIN"})
    t.check("marqeta: a SET_PIN token without allow_plaintext_pin", r.status, 201)
    tok = (r.json or {}).get("control_token")
    is_token(tok)
    r = call("PUT", MQ + "/pins", noplain, body={"control_token": tok, "pin": good_pin(pan)})
    marqeta_err("PUT /pins without allow_plaintext_pin", r, 403, "plaintext_not_allowed")
    t.check("marqeta: ... and the PIN is unchanged (test mode's 0000)", verify(noplain, card, "0000"), "match")
    r = call("POST", MQ + "/pins/controltoken", noplain, body={"card_token": card, "controltoken_type": "REVEAL_PIN"})
    tok = (r.json or {}).get("control_token")
    is_token(tok)
    r = call("POST", MQ + "/pins/reveal", noplain, body={"control_token": tok, "cardholder_verification_method": "OTP"})
    marqeta_err("/pins/reveal without allow_plaintext_reveal", r, 403, "plaintext_not_allowed")
    card, _ = new_card(noreveal)
    r = call("POST", MQ + "/pins/controltoken", noreveal, body={"card_token": card, "controltoken_type": "REVEAL_PIN"})
    marqeta_err("a REVEAL_PIN token where reveal is off", r, 403, "reveal_disabled")


# ---------------------------------------------------------------- Thredd


def thredd(main, weak, noplain, noreveal):
    th_problem = lambda w, r, s, c: problem(f"thredd: {w}", r, s, c)  # noqa: E731
    # The document's own example, literally (a bare number with leading zeros),
    # on a program that accepts 0000; a PIN set first so that 0000 is a change.
    card, pan = new_card(weak, external_id=f"th-seed-{rng.getrandbits(32):08x}")
    first = good_pin(pan)
    r = call("POST", f"{TH}/cards/{card}/pin", weak, body={"pin": first})
    t.check("thredd: set a first PIN", r.status, 204)
    literal = b'{\n"pin": 0000\n}'
    r = call("POST", f"{TH}/cards/{card}/pin", weak, raw=literal, ctype="application/json")
    t.check("thredd: the seed's literal body {\"pin\": 0000} (204, no body)", (r.status, r.raw), (204, b""))
    t.check("thredd: ... sets 0000 (the old PIN no longer verifies)", verify(weak, card, first), "mismatch")
    t.check("thredd: ... sets 0000 (0000 verifies)", verify(weak, card, "0000"), "match")
    r = call("GET", f"{TH}/cards/{card}/pin", weak)
    t.check("thredd: GET the PIN after the literal example", (r.status, r.json), (200, {"pin": "0000"}))

    for i in range(ROUNDS):
        ext = f"th-{i}-{rng.getrandbits(32):08x}"
        card, pan = new_card(main, external_id=ext)
        name = ext if i % 2 else card
        auth = "basic" if i % 3 == 2 else "bearer"
        style = i % 3
        pin = good_pin(pan, *lengths(i), lead_zero={0: None, 1: True, 2: False}[style])
        what = f"thredd round {i} ({'external_id' if i % 2 else 'card id'}, {len(pin)} digits)"
        if style == 0:
            r = call("POST", f"{TH}/cards/{name}/pin", main, auth=auth, body={"pin": pin})
            how = "a JSON string"
        elif style == 1:
            r = call("POST", f"{TH}/cards/{name}/pin", main, auth=auth, raw=('{"pin": %s}' % pin).encode(),
                     ctype="application/json")
            how = "a bare number with a leading zero"
        else:
            r = call("POST", f"{TH}/cards/{name}/pin", main, auth=auth, body={"pin": int(pin)})
            how = "a JSON number"
        t.check(f"{what}: set the PIN as {how}", (r.status, r.raw), (204, b""))
        t.check(f"{what}: the PIN set is the PIN verified", verify(main, card, pin), "match")
        r = call("GET", f"{TH}/cards/{name}/pin", main, auth=auth)
        t.check(f"{what}: GET the PIN", (r.status, r.json), (200, {"pin": pin}))
        r = call("GET", f"{TH}/cards/{name}/pin/status", main, auth=auth)
        t.check(f"{what}: PIN status", (r.status, r.json), (200, {"status": "Unblocked", "remainingTries": "3"}))
        verify(main, card, wrong_pin(pin))
        r = call("GET", f"{TH}/cards/{name}/pin/status", main, auth=auth)
        t.check(f"{what}: PIN status after a wrong PIN", r.json, {"status": "Unblocked", "remainingTries": "2"})
        body = {"description": "Resetting the attempt counter", "updatedBy": "John Smith"}
        r = call("POST", f"{TH}/cards/{name}/pin/unblock", main, auth=auth, body=body)
        t.check(f"{what}: unblock while not blocked", (r.status, r.raw), (204, b""))
        r = call("GET", f"{TH}/cards/{name}/pin/status", main, auth=auth)
        t.check(f"{what}: ... resets the count", r.json, {"status": "Unblocked", "remainingTries": "3"})
        t.check(f"{what}: ... event pin.fail_count_reset", len(events(main, card, "pin.fail_count_reset")), 1)
        state, _ = block(main, card, pin)
        t.check(f"{what}: blocked by three wrong PINs", state, "blocked")
        r = call("GET", f"{TH}/cards/{name}/pin/status", main, auth=auth)
        t.check(f"{what}: PIN status when blocked", r.json, {"status": "Blocked", "remainingTries": "0"})
        r = call("POST", f"{TH}/cards/{name}/pin/unblock", main, auth=auth, raw=json.dumps(body).encode())
        th_problem(f"round {i}: unblock without a Content-Type", r, 415, "unsupported_media_type")
        r = call("POST", f"{TH}/cards/{name}/pin/unblock", main, auth=auth, raw=json.dumps(body).encode(),
                 ctype="text/plain")
        th_problem(f"round {i}: unblock as text/plain", r, 415, "unsupported_media_type")
        t.check(f"{what}: ... which left it blocked", pin_status(main, card).get("status"), "blocked")
        r = call("POST", f"{TH}/cards/{name}/pin/unblock", main, auth=auth,
                 body={"description": "Unblocking blocked PIN", "updatedBy": "John Smith"})
        t.check(f"{what}: unblock the blocked PIN", (r.status, r.raw), (204, b""))
        r = call("GET", f"{TH}/cards/{name}/pin/status", main, auth=auth)
        t.check(f"{what}: PIN status after unblock", r.json, {"status": "Unblocked", "remainingTries": "3"})
        t.check(f"{what}: the card is active again (v1)", card_status(main, card), "active")
        t.check(f"{what}: the PIN verifies after unblock", verify(main, card, pin), "match")
        t.check(f"{what}: pin.fail_count_reset for both unblocks",
                len(events(main, card, "pin.fail_count_reset")), 2)

    # Bad input: problem+json, nothing changed.
    card, pan = new_card(main, external_id=f"th-x-{rng.getrandbits(32):08x}")
    pin = good_pin(pan)
    call("POST", f"{TH}/cards/{card}/pin", main, body={"pin": pin})
    before = pin_status(main, card)
    for label, raw, code in (("a 3-digit PIN", b'{"pin":"123"}', "invalid_pin"),
                             ("a PIN with a letter", b'{"pin":"12a4"}', "invalid_pin"),
                             ("a 3-digit number", b'{"pin": 123}', "invalid_pin"),
                             ("a weak PIN", b'{"pin":"1111"}', "weak_pin"),
                             ("a weak PIN as a number", b'{"pin": 4321}', "weak_pin")):
        r = call("POST", f"{TH}/cards/{card}/pin", main, raw=raw, ctype="application/json")
        th_problem(f"set with {label}", r, 422, code)
    r = call("POST", f"{TH}/cards/{card}/pin", main, raw=b'{"pin":', ctype="application/json")
    th_problem("malformed JSON", r, 400, "invalid_request")
    after = pin_status(main, card)
    t.check("thredd: refused sets changed nothing (PIN status)",
            {k: after.get(k) for k in ("set_by", "updated_at")}, {k: before.get(k) for k in ("set_by", "updated_at")})
    t.check("thredd: refused sets changed nothing (the PIN verifies)", verify(main, card, pin), "match")
    r = call("PATCH", "/v1/program", main, body={"max_tries": 5})
    t.check("thredd: PATCH max_tries=5", r.status, 200)
    r = call("GET", f"{TH}/cards/{card}/pin/status", main)
    t.check("thredd: remainingTries follows max_tries", r.json, {"status": "Unblocked", "remainingTries": "5"})
    call("PATCH", "/v1/program", main, body={"max_tries": 3})
    r = call("GET", f"{TH}/cards/card_doesnotexist/pin/status", main)
    th_problem("an unknown publicToken", r, 404, "not_found")
    stranger, _ = new_card(noplain)
    r = call("GET", f"{TH}/cards/{stranger}/pin/status", main)
    th_problem("another program's card", r, 404, "not_found")
    unauthorized("thredd", "GET", f"{TH}/cards/{card}/pin/status", None, th_problem)
    unauthorized("thredd", "POST", f"{TH}/cards/{card}/pin", "json", th_problem)
    # The program's rules.
    r = call("POST", f"{TH}/cards/{stranger}/pin", noplain, body={"pin": good_pin(pan)})
    th_problem("set without allow_plaintext_pin", r, 403, "plaintext_not_allowed")
    t.check("thredd: ... and the PIN is unchanged", verify(noplain, stranger, "0000"), "match")
    r = call("GET", f"{TH}/cards/{stranger}/pin", noplain)
    th_problem("GET the PIN without allow_plaintext_reveal", r, 403, "plaintext_not_allowed")
    off, _ = new_card(noreveal)
    r = call("GET", f"{TH}/cards/{off}/pin", noreveal)
    th_problem("GET the PIN where reveal is off", r, 403, "reveal_disabled")


# ---------------------------------------------------------------- Spidr


def spidr(key, hook_port):
    sp_problem = lambda w, r, s, c: problem(f"spidr: {w}", r, s, c)  # noqa: E731
    base_hook = f"http://127.0.0.1:{hook_port}"
    # Endpoints: one of Spidr's format, one of v1's for the new event type.
    r = call("POST", "/v1/webhook-endpoints", key,
             body={"url": base_hook + "/spidr", "events": SPIDR_NAMES, "format": "spidr"})
    t.check("spidr: a webhook endpoint of format spidr (201, format)", (r.status, (r.json or {}).get("format")),
            (201, "spidr"))
    spidr_ep = r.json or {}
    r = call("POST", "/v1/webhook-endpoints", key,
             body={"url": base_hook + "/v1", "events": ["pin.fail_count_reset", "pin.changed"]})
    t.check("spidr: a v1 endpoint with pin.fail_count_reset (201, format)", (r.status, (r.json or {}).get("format")),
            (201, "pinvault"))
    v1_ep = r.json or {}
    r = call("POST", "/v1/webhook-endpoints", key,
             body={"url": base_hook + "/bad", "events": ["card.pinToken", "pin.changed"], "format": "spidr"})
    sp_problem("a spidr endpoint listing a v1 event name", r, 422, "invalid_request")
    r = call("POST", "/v1/webhook-endpoints", key,
             body={"url": base_hook + "/bad", "events": ["card.pinToken"], "format": "galileo"})
    j = r.json if isinstance(r.json, dict) else {}
    t.check("spidr: an unknown webhook format (4xx invalid_request)", (r.status in (400, 422), j.get("code")),
            (True, "invalid_request"))
    listed = call("GET", "/v1/webhook-endpoints", key).json or {}
    formats = {e.get("id"): e.get("format") for e in listed.get("data", [])}
    t.check("spidr: the endpoints' views name their formats",
            (formats.get(spidr_ep.get("id")), formats.get(v1_ep.get("id")), len(formats)), ("spidr", "pinvault", 2))

    settings = call("GET", "/v1/program", key).json["settings"]
    attempts, ttl = settings["set_token_attempts"], settings["set_token_ttl_s"]
    t.check("spidr: the program sets PINs directly (the compat flow stages anyway)", settings["pin_set_mode"], "direct")
    expected = {}  # card id → Counter of Spidr names
    expected_v1 = {}  # card id → count of pin.fail_count_reset
    pins = {}
    for i in range(ROUNDS):
        ext = f"sp-{i}-{rng.getrandbits(32):08x}"
        card, pan = new_card(key, external_id=ext)
        name = ext if i % 2 else card
        auth = "basic" if i % 3 == 1 else "bearer"
        what = f"spidr round {i} ({'external_id' if i % 2 else 'card id'})"
        old = "0000"
        pin = good_pin(pan, *lengths(i))
        pins[card] = pin
        r = call("GET", f"{SP}/card/{name}", key, auth=auth)
        t.check(f"{what}: GET /card of a new card", (r.status, r.json),
                (200, {"cardId": card, "last4": pan[-4:], "status": "active", "pinFailCount": 0, "pinFailDate": None}))
        r = call("GET", f"{SP}/card/{name}/pinChangeToken", key, auth=auth)
        j = r.json if isinstance(r.json, dict) else {}
        token = j.get("token")
        t.check(f"{what}: pinChangeToken (status, fields, token)",
                (r.status, keys_of(r.json), is_token(token)),
                (200, ["attemptsRemaining", "expiresAt", "token", "url"], True))
        t.check(f"{what}: url is the set widget with the token", j.get("url"), f"{PUBLIC}/widgets/pin-set?token={token}")
        t.check(f"{what}: attemptsRemaining is the program's set_token_attempts", j.get("attemptsRemaining"), attempts)
        left = (ts(j["expiresAt"]).timestamp() - time.time()) if is_rfc3339(j.get("expiresAt")) else None
        t.check(f"{what}: expiresAt is RFC 3339, set_token_ttl_s ahead",
                left is not None and ttl - 30 <= left <= ttl + 5, True)
        # The cardholder's side: the widget page, then what its script sends.
        page = call("GET", f"/widgets/pin-set?token={token}")
        t.check(f"{what}: the set widget opens with the token", (page.status, page.ctype), (200, "text/html"))
        if i % 2 == 0:
            plain = json.dumps({"pin": pin, "card_id": card, "iat": int(time.time())})
            r = call("POST", "/widgets/api/pin-set",
                     body={"control_token": token, "encrypted_pin": encrypt(plain, "RSA-OAEP-256", "A256GCM")})
            how = "the widget's call"
        else:
            r = call("PUT", f"/v1/cards/{card}/pin", key, body={"control_token": token, "encrypted_pin": encrypt(pin)})
            how = "PUT /v1/cards/{id}/pin"
        t.check(f"{what}: staged through {how} although the program is direct", (r.status, r.json),
                (202, {"status": "staged"}))
        t.check(f"{what}: the old PIN still verifies before the commit", verify(key, card, old), "match")
        t.check(f"{what}: v1 PIN status says staged", pin_status(key, card).get("staged"), True)
        r = call("POST", f"{SP}/card/{name}/commitPinChange", key, auth=auth)
        t.check(f"{what}: commitPinChange", (r.status, r.json), (200, {"status": "committed"}))
        t.check(f"{what}: the committed PIN verifies", verify(key, card, pin), "match")
        t.check(f"{what}: the old PIN no longer does", verify(key, card, old), "mismatch")
        r = call("POST", f"{SP}/card/{name}/commitPinChange", key, auth=auth)
        sp_problem(f"round {i}: a second commit", r, 409, "nothing_staged")
        t.check(f"{what}: the second commit changed nothing", verify(key, card, pin), "match")
        verify(key, card, wrong_pin(pin))
        r = call("GET", f"{SP}/card/{name}", key, auth=auth)
        j = r.json if isinstance(r.json, dict) else {}
        t.check(f"{what}: GET /card (fields, cardId, last4, status, pinFailCount)",
                (r.status, keys_of(r.json), j.get("cardId"), j.get("last4"), j.get("status"), j.get("pinFailCount")),
                (200, ["cardId", "last4", "pinFailCount", "pinFailDate", "status"], card, pan[-4:], "active", 1))
        t.check(f"{what}: pinFailDate is RFC 3339 after a failure", is_rfc3339(j.get("pinFailDate")), True)
        r = call("POST", f"{SP}/card/{name}/resetPinFailCount", key, auth=auth)
        t.check(f"{what}: resetPinFailCount", (r.status, r.json), (200, {"pinFailCount": 0}))
        r = call("GET", f"{SP}/card/{name}", key, auth=auth)
        t.check(f"{what}: GET /card after the reset", ((r.json or {}).get("pinFailCount"), (r.json or {}).get("status")),
                (0, "active"))
        state, _ = block(key, card, pin)
        t.check(f"{what}: blocked by three wrong PINs", state, "blocked")
        r = call("GET", f"{SP}/card/{name}", key, auth=auth)
        t.check(f"{what}: GET /card when blocked", ((r.json or {}).get("pinFailCount"), (r.json or {}).get("status")),
                (3, "inactive"))
        r = call("POST", f"{SP}/card/{name}/resetPinFailCount", key, auth=auth)
        t.check(f"{what}: resetPinFailCount when blocked", (r.status, r.json), (200, {"pinFailCount": 0}))
        t.check(f"{what}: ... unblocks (v1 PIN status)", pin_status(key, card).get("status"), "unblocked")
        r = call("GET", f"{SP}/card/{name}", key, auth=auth)
        t.check(f"{what}: GET /card after the reset", ((r.json or {}).get("pinFailCount"), (r.json or {}).get("status")),
                (0, "active"))
        t.check(f"{what}: the PIN verifies after the reset", verify(key, card, pin), "match")
        t.check(f"{what}: v1 pin.fail_count_reset for both resets", len(events(key, card, "pin.fail_count_reset")), 2)
        expected[card] = collections.Counter({"card.pinToken": 1, "account.pinChangeStageSuccess": 1,
                                              "card.pinChanged": 1, "account.pinChange": 1, "card.resetPin": 2})
        expected_v1[card] = 2

    # A refused staged PIN: pinChangeStageFail, then the same token stages a good one.
    card, pan = new_card(key)
    r = call("GET", f"{SP}/card/{card}/pinChangeToken", key)
    token = (r.json or {}).get("token")
    is_token(token)
    r = call("PUT", f"/v1/cards/{card}/pin", key, body={"control_token": token, "encrypted_pin": encrypt("1111")})
    sp_problem("a weak PIN staged", r, 422, "weak_pin")
    t.check("spidr: the refused PIN is not staged", pin_status(key, card).get("staged"), False)
    r = call("POST", f"{SP}/card/{card}/commitPinChange", key)
    sp_problem("commit after a refused stage", r, 409, "nothing_staged")
    pin = good_pin(pan, 8, 12)
    r = call("PUT", f"/v1/cards/{card}/pin", key, body={"control_token": token, "encrypted_pin": encrypt(pin)})
    t.check("spidr: the same token then stages a good PIN", (r.status, r.json), (202, {"status": "staged"}))
    r = call("POST", f"{SP}/card/{card}/commitPinChange", key)
    t.check("spidr: ... committed", r.status, 200)
    t.check("spidr: ... and it verifies", verify(key, card, pin), "match")
    expected[card] = collections.Counter({"card.pinToken": 1, "account.pinChangeStageFail": 1,
                                          "account.pinChangeStageSuccess": 1, "card.pinChanged": 1,
                                          "account.pinChange": 1})
    # A v1 set_pin token and a direct set: the program's own mode, and Spidr's names.
    card, pan = new_card(key)
    r = call("POST", f"/v1/cards/{card}/control-tokens", key, body={"type": "set_pin"})
    token = (r.json or {}).get("token")
    is_token(token)
    pin = good_pin(pan)
    r = call("PUT", f"/v1/cards/{card}/pin", key, body={"control_token": token, "encrypted_pin": encrypt(pin)})
    t.check("spidr: a v1 token still sets directly in a direct program", r.status, 204)
    r = call("POST", f"{SP}/card/{card}/commitPinChange", key)
    sp_problem("commit with nothing staged", r, 409, "nothing_staged")
    expected[card] = collections.Counter({"card.pinToken": 1, "card.pinChanged": 1, "account.pinChange": 1})
    # Every fail-count reset is card.resetPin, whichever route made it.
    r = call("POST", f"/v1/cards/{card}/pin/unblock", key, body={})
    t.check("spidr: a v1 unblock", r.status, 204)
    r = call("POST", f"{TH}/cards/{card}/pin/unblock", key, body={"description": "d", "updatedBy": "u"})
    t.check("spidr: a Thredd unblock in the same program", r.status, 204)
    state, _ = block(key, card, pin)
    t.check("spidr: blocked again", state, "blocked")
    r = call("POST", f"{ST}/issuing/cards/{card}", key, auth="basic", form={"status": "active"})
    t.check("spidr: reactivated by Stripe's status=active", (r.status, (r.json or {}).get("status")), (200, "active"))
    expected[card]["card.resetPin"] += 3
    t.check("spidr: v1 pin.fail_count_reset for the v1, Thredd and Stripe unblocks",
            len(events(key, card, "pin.fail_count_reset")), 3)
    expected_v1[card] = 3
    r = call("PATCH", f"/v1/cards/{card}", key, body={"status": "suspended"})
    r = call("GET", f"{SP}/card/{card}", key)
    t.check("spidr: GET /card of a suspended card", (r.json or {}).get("status"), "suspended")
    call("PATCH", f"/v1/cards/{card}", key, body={"status": "active"})
    # attemptsRemaining follows the program.
    r = call("PATCH", "/v1/program", key, body={"set_token_attempts": 3})
    t.check("spidr: PATCH set_token_attempts=3", r.status, 200)
    r = call("GET", f"{SP}/card/{card}/pinChangeToken", key)
    is_token((r.json or {}).get("token"))
    t.check("spidr: attemptsRemaining follows set_token_attempts", (r.json or {}).get("attemptsRemaining"), 3)
    call("PATCH", "/v1/program", key, body={"set_token_attempts": attempts})
    expected[card]["card.pinToken"] += 1
    # Errors.
    r = call("GET", f"{SP}/card/card_doesnotexist", key)
    sp_problem("an unknown card", r, 404, "not_found")
    r = call("GET", f"{SP}/card/card_doesnotexist/pinChangeToken", key)
    sp_problem("a token for an unknown card", r, 404, "not_found")
    unauthorized("spidr", "GET", f"{SP}/card/{card}", None, sp_problem)
    unauthorized("spidr", "POST", f"{SP}/card/{card}/resetPinFailCount", None, sp_problem)

    # The webhooks: Spidr's names only, as many as happened, signed, v1 event JSON.
    deadline = time.time() + 60
    while time.time() < deadline:
        got = by_card("/spidr")
        got_v1 = by_card("/v1")
        if all(got.get(c) == e for c, e in expected.items()) and \
                all(got_v1.get(c, {}).get("pin.fail_count_reset") == n for c, n in expected_v1.items()):
            break
        time.sleep(0.5)
    for c, e in expected.items():
        t.check(f"spidr: webhooks for {c} (Spidr's names, each as often as it happened)",
                dict(sorted(got.get(c, {}).items())), dict(sorted(e.items())))
    for c, n in expected_v1.items():
        t.check(f"spidr: v1 endpoint got pin.fail_count_reset for {c}",
                got_v1.get(c, {}).get("pin.fail_count_reset"), n)
    secret = spidr_ep.get("secret", "")
    for sig, body, event in deliveries("/spidr"):
        ok = isinstance(event, dict)
        t.check("spidr: delivery is v1 event JSON with a Spidr name",
                (ok and sorted(event) == ["created_at", "data", "id", "type"], ok and event["type"] in SPIDR_NAMES,
                 ok and is_rfc3339(event.get("created_at"))), (True, True, True))
        t.check("spidr: delivery signed as v1 webhooks are", signed(secret, sig, body), True)
        t.check("spidr: a changed body fails the signature", signed(secret, sig, body + b" "), False)
        t.check("spidr: no PIN or PAN in a delivery",
                [p for p in list(pins.values()) + PANS if len(p) >= 8 and p.encode() in body], [])
    for sig, body, event in deliveries("/v1"):
        t.check("spidr: v1 endpoint delivery signed, v1 names",
                (signed(v1_ep.get("secret", ""), sig, body),
                 isinstance(event, dict) and event.get("type") in ("pin.fail_count_reset", "pin.changed")),
                (True, True))


# ---------------------------------------------------------------- Stripe


def stripe_card(card, pan, expiry, status="active", livemode=False):
    month = int(expiry[5:]) if expiry else None
    year = int(expiry[:4]) if expiry else None
    return {"id": card, "object": "issuing.card", "last4": pan[-4:], "exp_month": month, "exp_year": year,
            "status": status, "livemode": livemode}


def stripe(main, live, other):
    for i in range(ROUNDS):
        ext = f"st-{i}-{rng.getrandbits(32):08x}"
        expiry = None if i % 3 == 2 else f"20{rng.randint(27, 39)}-{rng.randint(1, 12):02d}"
        extra = {"external_id": ext, **({"expiry": expiry} if expiry else {})}
        card, pan = new_card(main, **extra)
        name = ext if i % 2 else card
        auth = "basic" if i != 1 else "bearer"
        what = f"stripe round {i} ({'external_id' if i % 2 else 'card id'}, {auth}, expiry {expiry})"
        r = call("GET", f"{ST}/issuing/cards/{name}", main, auth=auth)
        t.check(f"{what}: GET the card", (r.status, r.json), (200, stripe_card(card, pan, expiry)))
        if i == 0:
            t.check("stripe: a new test-mode card's PIN is 0000", verify(main, card, "0000"), "match")
        pin = good_pin(pan, *lengths(i))
        token = encrypt(pin)
        # As curl -d sends it (brackets as they are), or as Stripe's libraries (encoded).
        form = f"pin[encrypted_number]={token}" if i % 2 == 0 else {"pin[encrypted_number]": token}
        r = call("POST", f"{ST}/issuing/cards/{name}", main, auth=auth, form=form)
        t.check(f"{what}: change the PIN (pin[encrypted_number])", (r.status, r.json), (200, stripe_card(card, pan, expiry)))
        t.check(f"{what}: the PIN set is the PIN verified", verify(main, card, pin), "match")
        state, _ = block(main, card, pin)
        t.check(f"{what}: three wrong PINs block it", state, "blocked")
        r = call("GET", f"{ST}/issuing/cards/{name}", main, auth=auth)
        t.check(f"{what}: a blocked card is inactive", (r.json or {}).get("status"), "inactive")
        r = call("POST", f"{ST}/issuing/cards/{name}", main, auth=auth, form={"status": "active"})
        t.check(f"{what}: status=active", (r.status, r.json), (200, stripe_card(card, pan, expiry)))
        t.check(f"{what}: ... reactivated and unblocked (v1)",
                (card_status(main, card), pin_status(main, card).get("status")), ("active", "unblocked"))
        t.check(f"{what}: ... and the PIN verifies", verify(main, card, pin), "match")
        t.check(f"{what}: ... the unblock emits pin.fail_count_reset",
                len(events(main, card, "pin.fail_count_reset")), 1)
        r = call("POST", f"{ST}/issuing/cards/{name}", main, auth=auth, form="status=inactive")
        t.check(f"{what}: status=inactive", (r.status, (r.json or {}).get("status")), (200, "inactive"))
        t.check(f"{what}: ... the v1 card is inactive", card_status(main, card), "inactive")
        t.check(f"{what}: ... and does not verify", verify(main, card, pin), "card_inactive")
        r = call("POST", f"{ST}/issuing/cards/{name}", main, auth=auth, form={"status": "active"})
        t.check(f"{what}: status=active again", (r.status, (r.json or {}).get("status")), (200, "active"))
        t.check(f"{what}: the PIN verifies again", verify(main, card, pin), "match")

    card, pan = new_card(main, expiry="2031-02")
    pin = good_pin(pan)
    r = call("POST", f"{ST}/issuing/cards/{card}", main, auth="basic", form={"pin[encrypted_number]": encrypt(pin)})
    t.check("stripe: set a PIN", r.status, 200)
    # A changed PIN unblocks a blocked one (Stripe's offline-PIN advice).
    block(main, card, pin)
    pin = good_pin(pan)
    r = call("POST", f"{ST}/issuing/cards/{card}", main, auth="basic", form={"pin[encrypted_number]": encrypt(pin)})
    t.check("stripe: a PIN change on a blocked card", r.status, 200)
    t.check("stripe: ... unblocks the PIN", pin_status(main, card).get("status"), "unblocked")
    if card_status(main, card) != "active":
        call("POST", f"{ST}/issuing/cards/{card}", main, auth="basic", form={"status": "active"})
    t.check("stripe: ... and the new PIN verifies", verify(main, card, pin), "match")
    # Suspended shows as inactive.
    r = call("PATCH", f"/v1/cards/{card}", main, body={"status": "suspended"})
    t.check("stripe: suspend through v1", r.status, 200)
    r = call("GET", f"{ST}/issuing/cards/{card}", main, auth="basic")
    t.check("stripe: a suspended card shows inactive", (r.json or {}).get("status"), "inactive")
    call("PATCH", f"/v1/cards/{card}", main, body={"status": "active"})
    # Bad input: Stripe's shape, nothing changed.
    before = pin_status(main, card)
    bad = good_pin(pan)
    cases = [
        ("an unknown parameter", {"foo": "bar"}, 400, "invalid_request"),
        ("an unknown parameter beside the PIN", {"pin[encrypted_number]": encrypt(bad), "metadata[x]": "y"}, 400,
         "invalid_request"),
        ("an undecryptable JWE", {"pin[encrypted_number]": encrypt(bad)[:-4] + "AAAA"}, 422, "decryption_failed"),
        ("a JWE that is not one", {"pin[encrypted_number]": "eyJhbGciOiJSU0..."}, 422, "decryption_failed"),
        ("a weak PIN", {"pin[encrypted_number]": encrypt("1111")}, 422, "weak_pin"),
        ("a 3-digit PIN", {"pin[encrypted_number]": encrypt("123")}, 422, "invalid_pin"),
    ]
    for label, form, status, code in cases:
        r = call("POST", f"{ST}/issuing/cards/{card}", main, auth="basic", form=form)
        stripe_err(label, r, status, code)
    r = call("POST", f"{ST}/issuing/cards/{card}", main, auth="basic", form={"status": "frozen"})
    j = ((r.json or {}).get("error") or {}) if isinstance(r.json, dict) else {}
    t.check("stripe: an unknown status (4xx invalid_request, Stripe shape)",
            (r.status in (400, 422), keys_of(r.json), j.get("type"), j.get("code")),
            (True, ["error"], "invalid_request_error", "invalid_request"))
    r = call("POST", f"{ST}/issuing/cards/{card}", main, auth="basic", body={"pin": {"encrypted_number": encrypt(bad)}})
    stripe_err("a JSON body", r, 415, "unsupported_media_type")
    r = call("POST", f"{ST}/issuing/cards/{card}", main, auth="basic", form="status=inactive&status=inactive")
    stripe_err("a field twice", r, 400, "invalid_request")
    r = call("POST", f"{ST}/issuing/cards/{card}", main, auth="basic", form={"status": "inactive", "pad": "a" * 70000})
    stripe_err("a body over 64 KiB", r, 413, "payload_too_large")
    r = call("DELETE", f"{ST}/issuing/cards/{card}", main, auth="basic")
    t.check("stripe: a method the route does not take (405, Stripe shape)", (r.status, keys_of(r.json)), (405, ["error"]))
    r = call("POST", f"{ST}/issuing/cards/{card}", main, auth="basic", raw=b"pin%5Bencrypted_number%5D=%zz",
             ctype="application/x-www-form-urlencoded")
    t.check("stripe: a form that cannot be read (4xx, Stripe shape)",
            (400 <= r.status < 500, keys_of(r.json)), (True, ["error"]))
    after = pin_status(main, card)
    t.check("stripe: refused requests changed nothing (PIN status)",
            {k: after.get(k) for k in ("set_by", "updated_at", "fail_count")},
            {k: before.get(k) for k in ("set_by", "updated_at", "fail_count")})
    t.check("stripe: refused requests changed nothing (the PIN verifies)", verify(main, card, pin), "match")
    t.check("stripe: ... nor the card's status", card_status(main, card), "active")
    twice = f"twice-st-{rng.getrandbits(32):08x}"
    new_card(main, external_id=twice)
    new_card(main, external_id=twice)
    r = call("GET", f"{ST}/issuing/cards/{twice}", main, auth="basic")
    stripe_err("an external_id two of the program's cards have", r, 409, "card_ambiguous")
    r = call("GET", f"{ST}/issuing/cards/card_doesnotexist", main, auth="basic")
    stripe_err("an unknown card", r, 404, "not_found")
    stranger, _ = new_card(other)
    r = call("POST", f"{ST}/issuing/cards/{stranger}", main, auth="basic", form={"status": "inactive"})
    stripe_err("another program's card", r, 404, "not_found")
    t.check("stripe: ... which is unchanged", card_status(other, stranger), "active")
    unauthorized("stripe", "GET", f"{ST}/issuing/cards/{card}", None, lambda w, r, s, c: stripe_err(w, r, s, c))
    unauthorized("stripe", "POST", f"{ST}/issuing/cards/{card}", "form", lambda w, r, s, c: stripe_err(w, r, s, c))
    # A live program's cards are livemode.
    lcard, lpan = new_card(live, expiry="2030-09")
    r = call("GET", f"{ST}/issuing/cards/{lcard}", live, auth="basic")
    t.check("stripe: a live program's card", (r.status, r.json), (200, stripe_card(lcard, lpan, "2030-09", livemode=True)))


# ---------------------------------------------------------------- Enfuce


def reveal_like_the_page(page_html, card):
    """What the reveal page's script does: its token, a P-256 key pair, the
    widget's call, and the JWE decrypted on the device."""
    m = re.search(r'data-token="([^"]*)"', page_html)
    if not m:
        return None, None, None
    token = html.unescape(m.group(1))
    device = jwk.JWK.generate(kty="EC", crv="P-256")
    pub = device.export_public(as_dict=True)
    r = call("POST", "/widgets/api/pin-reveal",
             body={"control_token": token, "device_key": {"kty": "EC", "crv": "P-256", "x": pub["x"], "y": pub["y"]}})
    if r.status != 200:
        return token, r, None
    box = jwe.JWE()
    box.deserialize(r.json["encrypted_pin"], key=device)
    return token, box.jose_header, json.loads(box.payload)


def enfuce(main, short, noplain, noreveal):
    en_problem = lambda w, r, s, c: problem(f"enfuce: {w}", r, s, c)  # noqa: E731
    rounds = [(main, i) for i in range(ROUNDS)] + [(noplain, ROUNDS)]
    for key, i in rounds:
        ext = f"en-{i}-{rng.getrandbits(32):08x}"
        card, pan = new_card(key, external_id=ext)
        if key is main:
            pin = good_pin(pan, *lengths(i))
            v1_set(key, card, pin)
        else:
            pin = "0000"  # a test-mode card's; no plaintext needed to see it on the device
        name = ext if i % 2 else card
        method = "OTHER" if i % 2 == 0 else METHODS[i % 6]
        what = f"enfuce round {i} ({'external_id' if i % 2 else 'card id'}, {method}" + \
            (", no plaintext settings)" if key is noplain else ")")
        if i % 2 == 0:
            r = call("POST", f"{EN}/plastics/{name}/pin-control", key)
        else:
            r = call("POST", f"{EN}/plastics/{name}/pin-control", key, auth="basic",
                     body={"cardholder_verification_method": method})
        j = r.json if isinstance(r.json, dict) else {}
        t.check(f"{what}: pin-control (status, fields, id)", (r.status, keys_of(r.json), is_token(j.get("id"))),
                (201, ["id", "pinURL"], True))
        t.check(f"{what}: pinURL", j.get("pinURL"), f"{PUBLIC}/widgets/pin-reveal")
        made = [e for e in events(key, card, "pin.token_created") if e["data"].get("token_type") != "set_pin"]
        data = made[0]["data"] if made else {}
        life = lifetime(made[0]) if made else None
        t.check(f"{what}: a reveal_pin token with the method",
                (len(made), data.get("token_type"), data.get("cardholder_verification_method")),
                (1, "reveal_pin", method))
        t.check(f"{what}: it lives at most 30 s", life is not None and 0 < life <= 30, True)
        # The device: POST controlId to pinURL (our server behind the public URL).
        path = j.get("pinURL", "")[len(PUBLIC):] or "/widgets/pin-reveal"
        if i % 2:
            # As step 6a writes it: <URL_GOES_HERE>?controlId=<ID_GOES_HERE>
            page = call("POST", path + "?" + urllib.parse.urlencode({"controlId": j.get("id", "")}))
        else:
            page = call("POST", path, form={"controlId": j.get("id", "")})
        text = page.raw.decode(errors="replace")
        t.check(f"{what}: the reveal page (status, type, widget, no initial status)",
                (page.status, page.ctype, 'data-widget="pin-reveal"' in text, "data-initial-status" in text),
                (200, "text/html", True, False))
        token, header, payload = reveal_like_the_page(text, card)
        t.check(f"{what}: the page carries the control id", token, j.get("id"))
        t.check(f"{what}: the JWE to the device (ECDH-ES, A256GCM)",
                (header or {}).get("alg") if isinstance(header, dict) else header,
                "ECDH-ES")
        t.check(f"{what}: the device decrypts the PIN that was set", payload, {"pin": pin, "card_id": card})
        shown = events(key, card, "pin.revealed")
        t.check(f"{what}: pin.revealed (method, to)",
                [(e["data"].get("cardholder_verification_method"), e["data"].get("to")) for e in shown],
                [(method, "device_key")])
        again = call("POST", path, form={"controlId": j.get("id", "")})
        t.check(f"{what}: the used control id shows -10",
                (again.status, 'data-initial-status="-10"' in again.raw.decode(errors="replace")), (403, True))

    # reveal_token_ttl_s shorter than 30 s wins.
    card, _ = new_card(short)
    r = call("POST", f"{EN}/plastics/{card}/pin-control", short)
    is_token((r.json or {}).get("id"))
    control = (r.json or {}).get("id", "")
    made = events(short, card, "pin.token_created")
    life = lifetime(made[0]) if made else None
    t.check("enfuce: with reveal_token_ttl_s=10 the token lives at most 10 s", life is not None and 0 < life <= 10, True)
    time.sleep(11)
    page = call("POST", "/widgets/pin-reveal", form={"controlId": control})
    t.check("enfuce: 11 s later the control id has expired (-10)",
            (page.status, 'data-initial-status="-10"' in page.raw.decode(errors="replace")), (403, True))
    # Errors.
    r = call("POST", f"{EN}/plastics/{card}/pin-control", short, body={"cardholder_verification_method": "PIN"})
    en_problem("an unknown verification method", r, 422, "invalid_request")
    r = call("POST", f"{EN}/plastics/{card}/pin-control", short, raw=b'{"cardholder_verification_method":"OTP"}',
             ctype="text/plain")
    en_problem("a text/plain body", r, 415, "unsupported_media_type")
    r = call("POST", f"{EN}/plastics/card_doesnotexist/pin-control", short)
    en_problem("an unknown plasticId", r, 404, "not_found")
    r = call("POST", f"{EN}/plastics/{card}/pin-control", main)
    en_problem("another program's plastic", r, 404, "not_found")
    unauthorized("enfuce", "POST", f"{EN}/plastics/{card}/pin-control", None, en_problem)
    off, _ = new_card(noreveal)
    r = call("POST", f"{EN}/plastics/{off}/pin-control", noreveal)
    en_problem("pin-control where reveal is off", r, 403, "reveal_disabled")
    page = call("POST", "/widgets/pin-reveal", form={"controlId": "pct_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
    t.check("enfuce: an unknown controlId at pinURL shows -10",
            (page.status, 'data-initial-status="-10"' in page.raw.decode(errors="replace")), (403, True))


# ---------------------------------------------------------------- OpenAPI, widget


def openapi():
    doc = call("GET", "/openapi.json").json or {}
    paths = doc.get("paths", {})
    norm = {re.sub(r"\{[^}]*\}", "{}", p): ops for p, ops in paths.items()}
    want = {
        "marqeta": [("post", MQ + "/pins/controltoken"), ("put", MQ + "/pins"), ("post", MQ + "/pins/reveal")],
        "thredd": [("post", TH + "/cards/{}/pin"), ("get", TH + "/cards/{}/pin"), ("get", TH + "/cards/{}/pin/status"),
                   ("post", TH + "/cards/{}/pin/unblock")],
        "spidr": [("get", SP + "/card/{}/pinChangeToken"), ("post", SP + "/card/{}/commitPinChange"),
                  ("post", SP + "/card/{}/resetPinFailCount"), ("get", SP + "/card/{}")],
        "stripe": [("post", ST + "/issuing/cards/{}"), ("get", ST + "/issuing/cards/{}")],
        "enfuce": [("post", EN + "/plastics/{}/pin-control")],
    }
    for vendor, routes in want.items():
        for method, path in routes:
            op = (norm.get(path) or {}).get(method)
            t.check(f"openapi: {method.upper()} {path} listed, tagged {vendor}",
                    (op or {}).get("tags") if op else "missing", [vendor])
    prefixes = {MQ: "marqeta", TH: "thredd", SP: "spidr", ST: "stripe", EN: "enfuce"}
    for path, ops in paths.items():
        for prefix, vendor in prefixes.items():
            if path.startswith(prefix + "/"):
                for method, op in ops.items():
                    if isinstance(op, dict) and "tags" in op:
                        t.check(f"openapi: {method.upper()} {path} tagged {vendor}", op.get("tags"), [vendor])


def widget_without_token():
    r = call("GET", "/widgets/pin-set")
    t.check("widgets: the set widget without a token (400, text/html)", (r.status, r.ctype), (400, "text/html"))


# ---------------------------------------------------------------- main

hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=hook.serve_forever, daemon=True).start()
S = Server(BIN, tag="compat", env={"PINVAULT_ALLOW_PRIVATE_WEBHOOK_TARGETS": "1",
                                   "PINVAULT_WEBHOOK_RETRY_SCHEDULE": ",".join(["1s"] * 20),
                                   "PINVAULT_PUBLIC_URL": PUBLIC})
log = ""
try:
    plain = dict(allow_plaintext_pin=True, allow_plaintext_reveal=True, pin_length_max=12)
    main_key = program("compat main", **plain)
    weak_key = program("compat weak", reject_weak_pins=False, **plain)
    noplain_key = program("compat no plaintext", pin_length_max=12)
    noreveal_key = program("compat no reveal", reveal_enabled=False, **plain)
    spidr_key = program("compat spidr", pin_length_max=12)
    short_key = program("compat short reveal", reveal_token_ttl_s=10)
    live_key = program("compat live", mode="live")
    steps = [
        ("openapi", openapi),
        ("widget", widget_without_token),
        ("marqeta", lambda: marqeta(main_key, noplain_key, noreveal_key)),
        ("thredd", lambda: thredd(main_key, weak_key, noplain_key, noreveal_key)),
        ("spidr", lambda: spidr(spidr_key, hook.server_address[1])),
        ("stripe", lambda: stripe(main_key, live_key, noplain_key)),
        ("enfuce", lambda: enfuce(main_key, short_key, noplain_key, noreveal_key)),
    ]
    only = set(sys.argv[3].split(",")) if len(sys.argv) > 3 else None
    for name, step in steps:
        if only and name not in only:
            continue
        try:
            step()
        except Exception as e:  # a step that cannot go on is one failure, not the end of the run
            import traceback
            traceback.print_exc()
            t.fail(f"{name}: stopped by {type(e).__name__}: {e}")
finally:
    log = S.stop(t)
    hook.shutdown()

t.check("log: PINs of 8+ digits were used", len(PINS) >= 4, True)
t.check("log: no PIN of 8+ digits in the server's log", [p for p in PINS if p in log], [])
t.check("log: no PAN in the server's log", [p for p in PANS if p in log], [])
t.check("log: no control token in the server's log", [x for x in set(TOKENS) if x in log], [])
t.finish()
