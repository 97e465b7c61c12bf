#!/usr/bin/env python3
"""Sends COUNT requests of one scenario, one after another on one keep-alive
connection, and fails on any unexpected answer: the fixed load under which
scripts/benchmark --callgrind counts the server's instructions per request.

    drive.py BASE API_KEY CARDS_FILE ZONE_KEY_ID SCENARIO COUNT

SCENARIO: healthz (GET /healthz) | verify_match (POST /v1/cards/{id}/pin/verify
with the card's PIN as an ISO 9564 format 4 block, cards of CARDS_FILE round robin).
"""
import http.client
import json
import sys
import urllib.parse

base, key, cards_file, zone, scenario, count = sys.argv[1:7]
url = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
cards = [line.split()[:2] for line in open(cards_file)]
for n in range(int(count)):
    if scenario == "healthz":
        conn.request("GET", "/healthz")
    elif scenario == "verify_match":
        card, block = cards[n % len(cards)]
        body = json.dumps({"pin_block": block, "format": "iso_4", "zone_key_id": zone})
        conn.request("POST", f"/v1/cards/{card}/pin/verify", body,
                     {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    else:
        sys.exit(f"unknown scenario {scenario}")
    res = conn.getresponse()
    data = res.read()
    if res.status != 200 or (scenario == "verify_match" and b'"result":"match"' not in data):
        sys.exit(f"{scenario}: unexpected {res.status}: {data[:200]!r}")
