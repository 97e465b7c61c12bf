#!/usr/bin/env python3
"""Black-box: chip cards' issuer scripts over HTTP against an independent EMV
implementation (pyemv), as an authorization host would use them.

Starts `pinvault serve` on a fresh data directory; for random issuer master
keys (loaded as random components through `pinvault issuer-keys import`),
CVNs, PANs, PAN sequence numbers, ATCs, ARQCs and PINs:
- nothing pending: `icc_response_data` null;
- after a PIN set, `POST /v1/cards/{id}/chip/scripts` answers the `72`
  template byte for byte as pyemv makes it for the new PIN under this
  authorization's ARQC and ATC; a second host meanwhile gets the same script
  id; the chip's 9F5B "successful" for it ends the command (`in_sync`,
  `pin.chip_updated`), "failed" keeps it (`pin.chip_update_failed`);
- an offline-PIN unblock and its PIN UNBLOCK script; `offline_pin_blocked`;
- an ATM PIN change (ISO 4 blocks by psec) with chip data answers the PIN
  CHANGE script for the new PIN in the same response; a verification with chip
  data and nothing pending answers null;
- malformed DE 55 is 422 and changes nothing;
- races: twelve hosts asking for one card's script at once get one script id
  (each answer pyemv's for its own ARQC and ATC); a PIN change after a script
  went out makes it dead (its success ends nothing; the next script carries
  the newer PIN).

    python3 tests/interop/chip_api.py target/debug/pinvault [ROUNDS]
"""
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import warnings

warnings.filterwarnings("ignore")

from psec import pinblock  # noqa: E402
from pyemv import cvn, tlv  # noqa: E402

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
rng = secrets.SystemRandom()
passed = failed = 0
CVNS = {
    "visa_10": cvn.VisaCVN10, "visa_18": cvn.VisaCVN18, "visa_22": cvn.VisaCVN22,
    "mastercard_16": cvn.MasterCardCVN16, "mastercard_17": cvn.MasterCardCVN17,
    "mastercard_20": cvn.MasterCardCVN20, "mastercard_21": cvn.MasterCardCVN21,
}


def check(name, got, want):
    global passed, failed
    if got == want:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: got {got!r}, want {want!r}", file=sys.stderr)


def digits(n):
    return "".join(str(rng.randrange(10)) for _ in range(n))


def luhn_pan(n):
    body = [rng.randrange(10) for _ in range(n - 1)]
    total = 0
    for i, d in enumerate(reversed(body)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return "".join(map(str, body)) + str((10 - total % 10) % 10)


def random_pin():
    while True:
        pin = digits(rng.randint(4, 12))
        if len(set(pin)) > 1:
            return pin


data = tempfile.mkdtemp(prefix="pinvault-chip-")
log = tempfile.TemporaryFile("w+")
server = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data],
                          stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                          env={**os.environ, "PINVAULT_LOG": "info"})
base = None
for line in server.stderr:
    log.write(line)
    m = re.match(r"pinvault listening on (\S+)", line)
    if m:
        base = m.group(1)
        break
if not base:
    sys.exit("the server did not start")
threading.Thread(target=lambda: [log.write(line) for line in server.stderr], daemon=True).start()


def cli(*args):
    out = subprocess.run([BIN, *args, "--data-dir", data], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"pinvault {args[:2]} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def call(method, path, key, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def de55(arqc, atc, results=b""):
    items = {"9F26": arqc, "9F36": atc, "9F27": b"\x80", "95": secrets.token_bytes(5)}
    if results:
        items["9F5B"] = results
    return tlv.encode(items).hex().upper()


def scripts(key, card, icc, blocked=False):
    return call("POST", f"/v1/cards/{card}/chip/scripts", key,
                {"icc_data": icc, "offline_pin_blocked": blocked})


def set_pin(key, card, pin):
    status, body = call("POST", f"/v1/cards/{card}/control-tokens", key, {"type": "set_pin"})
    assert status == 201, body
    status, body = call("PUT", f"/v1/cards/{card}/pin", key,
                        {"control_token": body["token"], "pin": pin})
    assert status == 204, body


def chip_of(key, card):
    return call("GET", f"/v1/cards/{card}", key)[1]["chip"]


def events(key, card, kind):
    return call("GET", f"/v1/events?card_id={card}&type={kind}", key)[1]["data"]


try:
    created = cli("programs", "create", "--name", "chip", "--mode", "live")
    key, program = created["api_key"], created["program_id"]
    cli("programs", "update", program, "--set", "allow_plaintext_pin=true",
        "--set", "reject_weak_pins=false")
    zone_key = secrets.token_bytes(16)
    zpk = cli("zone-keys", "import", "--name", "atm", "--algorithm", "aes128",
              "--component", zone_key.hex(), "--program", program)["zone_key_id"]

    for round_ in range(ROUNDS):
        name = rng.choice(list(CVNS))
        ac, smi, smc = (secrets.token_bytes(16) for _ in range(3))
        args = ["issuer-keys", "import", "--program", program, "--name", f"iks {round_}", "--cvn", name]
        for flag, k in (("--imk-ac", ac), ("--imk-smi", smi), ("--imk-smc", smc)):
            c1 = secrets.token_bytes(16)
            args += [flag, c1.hex(), flag, bytes(a ^ b for a, b in zip(k, c1)).hex()]
        iks = cli(*args)["issuer_key_set_id"]
        pan, psn, pin = luhn_pan(rng.randint(13, 19)), digits(2), random_pin()
        ref = CVNS[name](ac, smi, smc, pan, psn)
        status, body = call("POST", "/v1/cards", key, {"pan": pan, "pin": {"pin": pin},
                            "chip": {"issuer_key_set_id": iks, "pan_sequence_number": psn}})
        assert status == 201, body
        card = body["id"]
        tag = f"{name} round {round_}"

        arqc, atc = secrets.token_bytes(8), secrets.token_bytes(2)
        check(f"{tag} nothing pending", scripts(key, card, de55(arqc, atc)),
              (200, {"icc_response_data": None, "commands": []}))

        new_pin = random_pin()
        set_pin(key, card, new_pin)
        check(f"{tag} change pending", chip_of(key, card)["pending_commands"], ["change_pin"])
        status, body = scripts(key, card, de55(arqc, atc))
        check(f"{tag} script answered", (status, body.get("commands")), (200, ["change_pin"]))
        got = bytes.fromhex(body.get("icc_response_data") or "")
        script_id = tlv.decode(got)["72"]["9F18"] if got else b""
        want = tlv.encode({"72": {"9F18": script_id, "86": ref.generate_pin_change_command(
            new_pin, tag_9f26=arqc, tag_9f36=atc)}})
        check(f"{tag} PIN CHANGE script", got.hex().upper(), want.hex().upper())
        # Another host, another authorization: the same script id, its own MAC.
        arqc2, atc2 = secrets.token_bytes(8), secrets.token_bytes(2)
        status, body = scripts(key, card, de55(arqc2, atc2))
        got2 = bytes.fromhex(body.get("icc_response_data") or "")
        want2 = tlv.encode({"72": {"9F18": script_id, "86": ref.generate_pin_change_command(
            new_pin, tag_9f26=arqc2, tag_9f36=atc2)}})
        check(f"{tag} same script id, new ARQC", got2.hex().upper(), want2.hex().upper())
        # The chip failed it: still pending; then succeeded: in sync.
        status, body = scripts(key, card, de55(arqc, atc, b"\x10" + script_id))
        check(f"{tag} failed keeps it", (status, body.get("commands")), (200, ["change_pin"]))
        check(f"{tag} failed event", len(events(key, card, "pin.chip_update_failed")), 1)
        fresh = tlv.decode(bytes.fromhex(body["icc_response_data"]))["72"]["9F18"]
        check(f"{tag} a fresh script after a failure", fresh != script_id, True)
        status, body = scripts(key, card, de55(arqc, atc, b"\x20" + fresh))
        check(f"{tag} success ends it", (status, body), (200, {"icc_response_data": None, "commands": []}))
        chip = chip_of(key, card)
        check(f"{tag} in sync", (chip["offline_pin"], chip["pending_commands"], chip["last_script_result"]),
              ("in_sync", [], "success"))
        check(f"{tag} updated event", events(key, card, "pin.chip_updated")[0]["data"].get("script_id"),
              fresh.hex().upper())

        # The chip's try counter ran out: blocked, then unblocked by script.
        status, body = scripts(key, card, de55(arqc, atc), blocked=True)
        check(f"{tag} offline blocked", (status, chip_of(key, card)["offline_pin"]), (200, "blocked"))
        check(f"{tag} blocked event", len(events(key, card, "pin.offline_blocked")), 1)
        check(f"{tag} unblock", call("POST", f"/v1/cards/{card}/chip/unblock-offline-pin", key)[0], 204)
        status, body = scripts(key, card, de55(arqc, atc))
        got = bytes.fromhex(body.get("icc_response_data") or "")
        uid = tlv.decode(got)["72"]["9F18"] if got else b""
        header = bytes.fromhex("8424000008")
        want = tlv.encode({"72": {"9F18": uid, "86": header + ref.generate_command_mac(
            header, tag_9f26=arqc, tag_9f36=atc)}})
        check(f"{tag} PIN UNBLOCK script", (body.get("commands"), got.hex().upper()),
              (["unblock_pin"], want.hex().upper()))
        scripts(key, card, de55(arqc, atc, b"\x20" + uid))
        check(f"{tag} unblocked", chip_of(key, card)["offline_pin"], "in_sync")

        # An ATM change with chip data: the script for the new PIN at once.
        atm_pin = random_pin()
        while atm_pin == new_pin:
            atm_pin = random_pin()
        status, body = call("POST", f"/v1/cards/{card}/pin/change", key, {
            "pin_block": pinblock.encipher_pinblock_iso_4(zone_key, new_pin, pan).hex(),
            "new_pin_block": pinblock.encipher_pinblock_iso_4(zone_key, atm_pin, pan).hex(),
            "format": "iso_4", "zone_key_id": zpk, "icc_data": de55(arqc2, atc2)})
        check(f"{tag} ATM change", (status, body.get("result")), (200, "changed"))
        got = bytes.fromhex(body.get("icc_response_data") or "")
        aid = tlv.decode(got)["72"]["9F18"] if got else b""
        want = tlv.encode({"72": {"9F18": aid, "86": ref.generate_pin_change_command(
            atm_pin, tag_9f26=arqc2, tag_9f36=atc2)}})
        check(f"{tag} ATM change script", got.hex().upper(), want.hex().upper())
        scripts(key, card, de55(arqc2, atc2, b"\x20" + aid))
        # A verification with chip data and nothing pending.
        status, body = call("POST", f"/v1/cards/{card}/pin/verify", key, {
            "pin_block": pinblock.encipher_pinblock_iso_4(zone_key, atm_pin, pan).hex(),
            "format": "iso_4", "zone_key_id": zpk, "icc_data": de55(arqc, atc)})
        check(f"{tag} verify with chip data", (status, body),
              (200, {"result": "match", "remaining_tries": 3, "icc_response_data": None}))

        # Malformed chip data: 422, nothing changes.
        set_pin(key, card, random_pin())
        before = chip_of(key, card)
        good = bytes.fromhex(de55(arqc, atc))
        for bad in (good[:-1].hex(), (good + b"\x00").hex(), "9F2607" + "00" * 7, "ZZ",
                    tlv.encode({"9F26": arqc}).hex(), tlv.encode({"9F26": arqc, "9F36": b"\x01"}).hex()):
            status, body = scripts(key, card, bad)
            check(f"{tag} malformed {bad[:12]}", (status, body.get("code")), (422, "invalid_request"))
        check(f"{tag} malformed changes nothing", chip_of(key, card), before)

    # Races, from outside (issue 20): many hosts asking for one card's script
    # at the same moment get one command between them (one script id, each
    # answer byte for byte pyemv's for its own ARQC and ATC); a PIN change
    # after a script went out makes that script dead: the chip's success for
    # it ends nothing, and the next script carries the newer PIN.
    from concurrent.futures import ThreadPoolExecutor
    for round_ in range(max(1, ROUNDS // 2)):
        name = rng.choice(list(CVNS))
        ac, smi, smc = (secrets.token_bytes(16) for _ in range(3))
        iks = cli("issuer-keys", "import", "--program", program, "--name", f"race {round_}", "--cvn", name,
                  "--imk-ac", ac.hex(), "--imk-smi", smi.hex(), "--imk-smc", smc.hex())["issuer_key_set_id"]
        pan, psn, pin = luhn_pan(16), digits(2), random_pin()
        ref = CVNS[name](ac, smi, smc, pan, psn)
        status, body = call("POST", "/v1/cards", key, {"pan": pan, "pin": {"pin": pin},
                            "chip": {"issuer_key_set_id": iks, "pan_sequence_number": psn}})
        card = body["id"]
        tag = f"race {name} {round_}"
        new_pin = random_pin()
        set_pin(key, card, new_pin)
        asks = [(secrets.token_bytes(8), secrets.token_bytes(2)) for _ in range(12)]
        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(lambda a: scripts(key, card, de55(*a)), asks))
        ids = set()
        for (arqc, atc), (status, body) in zip(asks, answers):
            got = bytes.fromhex(body.get("icc_response_data") or "")
            sid = tlv.decode(got)["72"]["9F18"] if got else b""
            ids.add(sid)
            want = tlv.encode({"72": {"9F18": sid, "86": ref.generate_pin_change_command(
                new_pin, tag_9f26=arqc, tag_9f36=atc)}})
            check(f"{tag} concurrent script", (status, got.hex().upper()), (200, want.hex().upper()))
        check(f"{tag} one script id among concurrent hosts", len(ids), 1)
        dead = ids.pop()
        # The PIN changes again while that script is out.
        newer = random_pin()
        while newer == new_pin:
            newer = random_pin()
        set_pin(key, card, newer)
        arqc, atc = secrets.token_bytes(8), secrets.token_bytes(2)
        status, body = scripts(key, card, de55(arqc, atc, b"\x20" + dead))
        check(f"{tag} a dead script's success ends nothing", body.get("commands"), ["change_pin"])
        got = bytes.fromhex(body.get("icc_response_data") or "")
        sid = tlv.decode(got)["72"]["9F18"] if got else b""
        check(f"{tag} a new script id after the change", sid != dead, True)
        want = tlv.encode({"72": {"9F18": sid, "86": ref.generate_pin_change_command(
            newer, tag_9f26=arqc, tag_9f36=atc)}})
        check(f"{tag} the script carries the newer PIN", got.hex().upper(), want.hex().upper())
        check(f"{tag} still pending", chip_of(key, card)["offline_pin"], "update_pending")
        scripts(key, card, de55(arqc, atc, b"\x20" + sid))
        check(f"{tag} its own success ends it", chip_of(key, card)["offline_pin"], "in_sync")

    # A card without chip data has no scripts.
    status, body = call("POST", "/v1/cards", key, {"pan": luhn_pan(16)})
    plain = body["id"]
    status, body = scripts(key, plain, de55(secrets.token_bytes(8), secrets.token_bytes(2)))
    check("no chip", (status, body.get("code")), (422, "invalid_request"))
finally:
    server.terminate()
    server.wait(timeout=10)
    log.seek(0)
    text = log.read()
    if "panicked" in text:
        failed += 1
        print("the server panicked:\n" + text[-3000:], file=sys.stderr)
    subprocess.run(["rm", "-rf", data])

print(f"chip api: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
