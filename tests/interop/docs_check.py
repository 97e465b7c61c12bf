#!/usr/bin/env python3
"""Keeps docs/reference.md in step with the binary, and the repository's documents
self-contained. Starts `pinvault serve` on a fresh data directory and checks, both
ways (nothing missing from the reference, nothing in it that does not exist):

- every route (method and path) of the served /openapi.json, and each route's
  parameters and request body fields;
- every error code (the `Code` enum of the document, which the server's own enum
  generates) and every event type (`EventType`);
- every program setting: its name, its range or values (as PATCH /v1/program's
  schema has them), its default (a fresh program's, from GET /v1/program), and who may
  change it (PATCH /v1/program with the current value: 200, or 403 for the operator's);
- every command of the command line and its flags (from `--help`);
- every relative link of README.md, SECURITY.md, BENCHMARKS.md and docs/*.md resolves
  to a file inside the repository, the links within the reference to its headings,
  and the document's description names only files that exist in the repository.

    python3 tests/interop/docs_check.py target/debug/pinvault
"""
import json
import os
import re
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Checks, Server  # noqa: E402

BIN = sys.argv[1]
ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
REFERENCE = os.path.join(ROOT, "docs", "reference.md")
DATA_FLAGS = ["--data-dir", "--database-url", "--db-pool-size", "--db-timeout-ms",
              "--db-statement-cache"]
checks = Checks("docs check")


def both_ways(what, documented, actual):
    """The same set in the reference as in the binary."""
    for name in sorted(actual - documented):
        checks.fail(f"{what} {name} is not in docs/reference.md")
    for name in sorted(documented - actual):
        checks.fail(f"docs/reference.md names {what} {name}, which does not exist")
    checks.check(f"{what}s documented", len(documented & actual), len(actual))


def section(text, title):
    """The text under the `## title` heading, up to the next `## ` heading."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not m:
        checks.fail(f"docs/reference.md has no section `## {title}`")
        return ""
    return m.group(1)


def table(text):
    """The rows of the Markdown tables in `text` whose first cell is `code`: name -> cells."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^\| `([^`]+)` \|(.*)\|$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in re.split(r"(?<!\\)\|", m.group(2))]
    return rows


def pieces(text, level):
    """Headings of this level whose title is one code span: title -> the text up to
    the next heading."""
    out = {}
    marks = "#" * level
    for m in re.finditer(rf"^{marks} `([^`]+)`\n(.*?)(?=^#+ |\Z)", text, re.M | re.S):
        out[m.group(1)] = m.group(2)
    return out


def anchor(heading):
    """GitHub's anchor for a heading."""
    h = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return h.replace(" ", "-")


reference = open(REFERENCE, encoding="utf-8").read()
server = Server(BIN, tag="docs")
try:
    with urllib.request.urlopen(server.base + "/openapi.json", timeout=30) as r:
        doc = json.load(r)
    schemas = doc["components"]["schemas"]

    def resolve(s):
        while "$ref" in s:
            s = schemas[s["$ref"].split("/")[-1]]
        return s

    # ---- routes, their parameters and body fields ----
    routes = section(reference, "HTTP routes")
    documented = pieces(routes, 4)
    actual = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            names = [p["name"] for p in op.get("parameters", [])]
            for content in (op.get("requestBody") or {}).get("content", {}).values():
                body = resolve(content.get("schema", {}))
                for k, v in body.get("properties", {}).items():
                    names.append(k)
                    inner = next((x for x in v.get("oneOf", []) if "$ref" in x), v)
                    names += [f"{k}.{n}" for n in resolve(inner).get("properties", {})]
            actual[f"{method.upper()} {path}"] = names
    both_ways("the route", {r for r in documented if re.match(r"^[A-Z]+ /", r)}, set(actual))
    for route, names in actual.items():
        text = documented.get(route, "")
        for name in names:
            if text and f"`{name}`" not in text:
                checks.fail(f"docs/reference.md, {route}: `{name}` is not described")
        checks.check(f"{route}: its fields described", all(f"`{n}`" in text for n in names), True)

    # ---- error codes and event types ----
    both_ways("the error code", set(table(section(reference, "Error codes"))),
              set(schemas["Code"]["enum"]))
    both_ways("the event type", set(table(section(reference, "Events"))),
              set(schemas["EventType"]["enum"]))

    # ---- program settings: names, values, defaults, who changes them ----
    made = server.cli("programs", "create", "--name", "docs-check", "--mode", "test")
    key = made["api_key"]
    status, program = server.call("GET", "/v1/program", key)
    checks.check("GET /v1/program", status, 200)
    defaults = program["settings"]
    rows = table(section(reference, "Program settings"))
    both_ways("the setting", set(rows), set(schemas["Settings"]["properties"]) | set(defaults))
    changes = schemas["SettingsChanges"]["properties"]
    for name, cells in rows.items():
        if name not in defaults or len(cells) < 3:
            continue
        values, default, by = cells[0], cells[1], cells[2]
        want = changes.get(name, {})
        inner = resolve(next((x for x in want.get("oneOf", []) if "$ref" in x), want))
        if "minimum" in want and "maximum" in want:
            checks.check(f"the values of {name}", values, f"{want['minimum']} to {want['maximum']}")
        elif "enum" in inner:
            checks.check(f"the values of {name}", values, ", ".join(f"`{e}`" for e in inner["enum"]))
        elif "boolean" in want.get("type", []):
            checks.check(f"the values of {name}", values, "`true`, `false`")
        elif "maxItems" in want:
            checks.check(f"the values of {name} name their most", f"at most {want['maxItems']}" in values, True)
        m = re.fullmatch(r"`(.*)`", default)
        try:
            documented_default = json.loads(m.group(1)) if m else default
        except json.JSONDecodeError:
            documented_default = m.group(1)
        checks.check(f"the default of {name}", documented_default, defaults[name])
        status, _ = server.call("PATCH", "/v1/program", key, {name: defaults[name]})
        checks.check(f"who may change {name}", by, "API, operator" if status == 200 else "operator")
        if status not in (200, 403):
            checks.fail(f"PATCH /v1/program {{{name!r}: its current value}}: {status}")

    # ---- the command line ----
    def help_of(path):
        out = subprocess.run([BIN, *path, "--help"], capture_output=True, text=True, timeout=60)
        commands, flags, part = [], [], None
        for line in out.stdout.splitlines():
            heading = re.match(r"^(\w[\w ]*):$", line)
            if heading:
                part = heading.group(1)
            elif part == "Commands":
                m = re.match(r"^  (\S+)\s", line)
                if m and m.group(1) != "help":
                    commands.append(m.group(1))
            elif part == "Options":
                m = re.match(r"^\s{2,6}(?:-\w, )?(--[a-z0-9-]+)", line)
                if m and m.group(1) not in ("--help", "--version"):
                    flags.append(m.group(1))
        return commands, flags

    cli = section(reference, "Command line")
    command_docs = {**pieces(cli, 3), **pieces(cli, 4)}
    data_flags = re.search(r"^### Data flags\n(.*?)(?=^### |\Z)", cli, re.M | re.S)
    for flag in DATA_FLAGS:
        checks.check(f"the data flag {flag} described",
                     bool(data_flags) and f"`{flag} " in data_flags.group(1), True)
    actual_commands = {}

    def walk(path):
        commands, flags = help_of(path)
        if path:
            actual_commands["pinvault " + " ".join(path)] = flags
        for c in commands:
            walk(path + [c])

    walk([])
    both_ways("the command", {c for c in command_docs if c.startswith("pinvault ")},
              set(actual_commands))
    for command, flags in actual_commands.items():
        text = command_docs.get(command)
        if text is None:
            continue
        own = [f for f in flags if f not in DATA_FLAGS]
        described = set(re.findall(r"^- `(--[a-z0-9-]+)", text, re.M))
        for flag in sorted(set(own) - described):
            checks.fail(f"docs/reference.md, {command}: {flag} is not described")
        for flag in sorted(described - set(own)):
            checks.fail(f"docs/reference.md, {command}: {flag} is not a flag of it")
        checks.check(f"{command}: the data flags said or not",
                     "(#data-flags)" in text, any(f in DATA_FLAGS for f in flags))
        checks.check(f"{command}: its flags described", described, set(own))

    # ---- links stay inside the repository ----
    documents = ["README.md", "SECURITY.md", "BENCHMARKS.md"] + sorted(
        os.path.join("docs", f) for f in os.listdir(os.path.join(ROOT, "docs")) if f.endswith(".md"))
    for name in documents:
        path = os.path.join(ROOT, name)
        if not os.path.exists(path):
            continue
        text = open(path, encoding="utf-8").read()
        text = re.sub(r"```.*?```", "", text, flags=re.S)
        headings = {anchor(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            file, _, frag = target.partition("#")
            if not file:
                checks.check(f"{name}: the link #{frag} names a heading", frag in headings, True)
                continue
            resolved = os.path.realpath(os.path.join(os.path.dirname(path), file))
            inside = resolved.startswith(ROOT + os.sep) and os.path.exists(resolved)
            checks.check(f"{name}: the link {target} is a file of the repository", inside, True)
    description = doc["info"].get("description", "")
    for file in re.findall(r"[\w./-]+\.md", description):
        resolved = os.path.realpath(os.path.join(ROOT, file))
        checks.check(f"/openapi.json's description names {file}, a file of the repository",
                     resolved.startswith(ROOT + os.sep) and os.path.exists(resolved), True)
    checks.check("/openapi.json's description leaves nothing outside", "../" in description, False)
finally:
    server.stop(checks)

checks.finish()
