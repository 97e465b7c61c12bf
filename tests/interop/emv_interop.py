#!/usr/bin/env python3
"""The `emv` crate against an independent EMV implementation (pyemv).

For random issuer master keys, PANs (12 to 19 digits, so option B shows),
PAN sequence numbers, ATCs, ARQCs, PINs and script ids, for every CVN:
the PIN CHANGE and PIN UNBLOCK command APDUs byte for byte as pyemv's
`cvn` classes make them, and the `72` template byte for byte as pyemv's TLV
encoder makes it and read back by pyemv's decoder. Then each primitive on
its own: ICC master keys (options A and B), common and Visa session keys,
the retail MAC over random data, VIS and ISO 9564 format 2 PIN blocks,
Visa and Mastercard command data encipherment of random data. BER-TLV in
both directions: DE 55 and random nested trees that pyemv encodes are read
by the crate (and give what pyemv's decoder gives); trees the crate encodes
are read by pyemv and equal its own encoding; whatever pyemv refuses (cut
or extended DE 55) the crate refuses too.

The crate is reached through its example binary, which reads every case as
one JSON array on stdin:

    cargo build -p emv --examples
    python3 tests/interop/emv_interop.py target/debug/examples/emv_cases [ROUNDS]

Prints `emv interop: N passed, M failed`; exits non-zero on any failure.
"""
import json
import secrets
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")  # TDES deprecation notices from cryptography

from pyemv import cvn, kd, sm, tlv  # noqa: E402

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 100
rng = secrets.SystemRandom()
passed = failed = 0

CVNS = {
    "visa_10": cvn.VisaCVN10,
    "visa_18": cvn.VisaCVN18,
    "visa_22": cvn.VisaCVN22,
    "mastercard_16": cvn.MasterCardCVN16,
    "mastercard_17": cvn.MasterCardCVN17,
    "mastercard_20": cvn.MasterCardCVN20,
    "mastercard_21": cvn.MasterCardCVN21,
}
# Real EMV tags for random trees (pyemv's decoder keeps one value per tag).
PRIMITIVE_TAGS = ["82", "84", "95", "9A", "9C", "5F2A", "5F34", "9F02", "9F03", "9F09", "9F10",
                  "9F1A", "9F1E", "9F27", "9F33", "9F34", "9F35", "9F37", "9F41", "9F53", "DF8101"]
CONSTRUCTED_TAGS = ["70", "77", "E1", "BF0C", "BF8102"]

cases, expected = [], []


def want(name, case, value):
    """Queue a case for the crate and the value pyemv gives for it."""
    cases.append(case)
    expected.append((name, value))


def check(name, got, value):
    global passed, failed
    if got == value:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: got {got!r}, want {value!r}", file=sys.stderr)


def digits(n):
    return "".join(str(rng.randrange(10)) for _ in range(n))


def h(b):
    return b.hex().upper()


def rand_tree(depth=0):
    """A random TLV tree as pyemv's dict form (str keys, bytes or dict values)."""
    tree = {}
    for _ in range(rng.randint(0 if depth else 1, 4)):
        if depth < 3 and rng.random() < 0.25:
            tree[rng.choice(CONSTRUCTED_TAGS)] = rand_tree(depth + 1)
        else:
            n = rng.choice([0, 1, 2, 8, rng.randint(0, 40), rng.randint(120, 300)])
            tree[rng.choice(PRIMITIVE_TAGS)] = secrets.token_bytes(n)
    return tree


def to_ours(tree):
    """pyemv's dict tree as the example binary's JSON tree."""
    return [{"tag": t, "children": to_ours(v)} if isinstance(v, dict) else {"tag": t, "value": h(v)}
            for t, v in tree.items()]


def from_ours(items):
    """The example binary's JSON tree as pyemv's dict form."""
    return {i["tag"]: from_ours(i["children"]) if "children" in i else bytes.fromhex(i["value"])
            for i in items}


for _ in range(ROUNDS):
    ac, smi, smc = (secrets.token_bytes(16) for _ in range(3))
    pan, psn = digits(rng.randint(12, 19)), digits(2)
    atc, arqc = secrets.token_bytes(2), secrets.token_bytes(8)
    pin, script_id = digits(rng.randint(4, 12)), secrets.token_bytes(4)
    card = {"ac": h(ac), "smi": h(smi), "smc": h(smc), "pan": pan, "psn": psn,
            "atc": h(atc), "arqc": h(arqc), "script_id": h(script_id)}

    # Whole scripts, every CVN.
    for name, cls in CVNS.items():
        ref = cls(ac, smi, smc, pan, psn)
        change = ref.generate_pin_change_command(pin, tag_9f26=arqc, tag_9f36=atc)
        header = bytes.fromhex("8424000008")
        unblock = header + ref.generate_command_mac(header, tag_9f26=arqc, tag_9f36=atc)
        for command, apdu in (("change_pin", change), ("unblock_pin", unblock)):
            template = tlv.encode({"72": {"9F18": script_id, "86": apdu}})
            want(f"{name} {command}", {"op": "script", "cvn": name, "command": command, "pin": pin,
                                       **card}, {"apdu": h(apdu), "template": h(template)})

    # Primitives.
    imk = secrets.token_bytes(16)
    for option, fn in (("a", kd.derive_icc_mk_a), ("b", kd.derive_icc_mk_b)):
        want(f"icc_mk option {option} (PAN of {len(pan)})",
             {"op": "icc_mk", "option": option, "imk": h(imk), "pan": pan, "psn": psn},
             h(fn(imk, pan, psn)))
    mk, r = secrets.token_bytes(16), secrets.token_bytes(8)
    want("common_sk", {"op": "common_sk", "mk": h(mk), "r": h(r)}, h(kd.derive_common_sk(mk, r)))
    want("visa_sk", {"op": "visa_sk", "mk": h(mk), "atc": h(atc)}, h(kd.derive_visa_sm_sk(mk, atc)))
    key, data = secrets.token_bytes(16), secrets.token_bytes(rng.randint(0, 40))
    want(f"mac ({len(data)} bytes)", {"op": "mac", "key": h(key), "data": h(data)},
         h(sm.generate_command_mac(key, data)))
    want("vis pin block", {"op": "pin_block", "format": "vis", "mk_ac": h(mk), "pin": pin},
         h(sm.format_vis_pin_block(mk, pin)))
    want("iso2 pin block", {"op": "pin_block", "format": "iso2", "pin": pin},
         h(sm.format_iso9564_2_pin_block(pin)))
    for mode, kind in (("visa", sm.EncryptionType.VISA), ("mastercard", sm.EncryptionType.MASTERCARD)):
        want(f"encipher {mode} ({len(data)} bytes)",
             {"op": "encipher", "mode": mode, "key": h(key), "data": h(data)},
             h(sm.encrypt_command_data(key, data, kind)))

    # DE 55 made by pyemv, tags in random order, with and without 9F5B.
    results = [bytes([rng.randrange(3) << 4 | rng.randrange(16)]) + secrets.token_bytes(4)
               for _ in range(rng.randint(0, 3))]
    fields = {t: v for t, v in rand_tree().items() if t not in ("9F26", "9F36", "9F5B")}
    fields.update({"9F26": arqc, "9F36": atc})
    if results or rng.random() < 0.5:
        fields["9F5B"] = b"".join(results)
    order = list(fields)
    rng.shuffle(order)
    de55 = tlv.encode({t: fields[t] for t in order})
    want("parse_icc of pyemv's DE 55", {"op": "parse_icc", "data": h(de55)},
         {"arqc": h(arqc), "atc": h(atc),
          "results": [[r[0] >> 4, r[0] & 15, h(r[1:])] for r in results]})
    # Cut or extended: whatever pyemv refuses, the crate must refuse.
    for bad in (de55[:rng.randrange(len(de55))], de55 + secrets.token_bytes(rng.randint(1, 3))):
        try:
            tlv.decode(bad)
        except tlv.DecodeError:
            want("malformed DE 55 refused", {"op": "parse_tlv", "data": h(bad)}, "err")

    # Random trees: pyemv encodes, the crate parses; the crate encodes, pyemv decodes.
    tree = rand_tree()
    encoded = tlv.encode(tree)
    want("parse_tlv of pyemv's tree", {"op": "parse_tlv", "data": h(encoded)}, ("tree", tree))
    want("encode_tlv == pyemv's encoding", {"op": "encode_tlv", "tree": to_ours(tree)}, h(encoded))

out = subprocess.run([BIN], input=json.dumps(cases), capture_output=True, text=True, timeout=300)
if out.returncode != 0:
    print(f"{BIN} failed: {out.stderr.strip()}", file=sys.stderr)
    sys.exit(1)
answers = json.loads(out.stdout)
assert len(answers) == len(cases)

for case, (name, value), answer in zip(cases, expected, answers):
    if value == "err":
        check(name, "err" in answer, True)
    elif "err" in answer:
        check(name, answer["err"], value)
    elif isinstance(value, tuple):  # a parsed tree, compared as pyemv's dict form
        check(name, from_ours(answer["ok"]), value[1])
        check(name + " == pyemv's decoding", from_ours(answer["ok"]),
              tlv.decode(bytes.fromhex(case["data"])))
    else:
        check(name, answer["ok"], value)
        if case["op"] == "script":
            # And pyemv's decoder reads the crate's template back.
            t = tlv.decode(bytes.fromhex(answer["ok"]["template"]))
            check(name + " template read by pyemv", t, {"72": {
                "9F18": bytes.fromhex(case["script_id"]), "86": bytes.fromhex(answer["ok"]["apdu"])}})
        if case["op"] == "encode_tlv":
            check(name + " read by pyemv", tlv.decode(bytes.fromhex(answer["ok"])),
                  from_ours(case["tree"]))

print(f"emv interop: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
