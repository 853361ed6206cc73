#!/usr/bin/env bash
# docs/openapi.json stays honest: it is valid JSON, OpenAPI 3.1.x, every $ref resolves,
# every operation has an operationId (unique) and responses, and the set of
# (method, path) pairs it documents is exactly the set of routes in iotsecd's source.
#
# How routes are read from the C source (apps/iotsecd/routes.c and operators.c). The
# router is an if / else-if chain on the request path; a route branch is a line
# `if (COND)` or `} else if (COND)` where COND is one of:
#   strcmp(path, "/lit") == 0          the path /lit
#   strncmp(path, "/lit/", N) == 0     /lit/{param}: a prefix and one trailing parameter
#                                      (N must be the literal's length)
#   match_NAME(path, ...)              the paths of the matcher function match_NAME:
#                                      its `prefix[] = "..."` literal, one {param}, then
#                                      its `suffix[] = "..."` literal, or "/" + each
#                                      literal of `strcmp(*action, "...")`
# The branch's method is the first `method != EVHTTP_REQ_<METHOD>` after the branch line
# and before the next branch line (every route answers 405 to the other methods). A
# branch without one, or a matcher the rule cannot read, fails the test: change the rule
# together with the router. Path parameters compare by position only ({id} == {x}).
#
# The checker also runs against a document with one operation removed and against a
# router with one route added, and must fail on both, so that it cannot silently pass.
source "$(dirname "$0")/lib.sh"

DOC="$IOTSEC_SOURCE_DIR/docs/openapi.json"
SRC=("$IOTSEC_SOURCE_DIR/apps/iotsecd/routes.c" "$IOTSEC_SOURCE_DIR/apps/iotsecd/operators.c")

cat >"$WORK/check.py" <<'PY'
import json, re, sys

doc_path, sources = sys.argv[1], sys.argv[2:]
problems = []

# --- the document ---------------------------------------------------------------------
try:
    with open(doc_path, encoding="utf-8") as f:
        doc = json.load(f)
except (OSError, ValueError) as e:
    print(f"{doc_path}: not JSON: {e}")
    sys.exit(1)

if not re.fullmatch(r"3\.1\.\d+", str(doc.get("openapi", ""))):
    problems.append(f"openapi is {doc.get('openapi')!r}, wanted 3.1.x")
for key in ("info", "paths", "components"):
    if not isinstance(doc.get(key), dict):
        problems.append(f"no '{key}' object")

def resolve(pointer):
    if not pointer.startswith("#/"):
        return False
    node = doc
    for part in pointer[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True

def walk(node, where):
    if isinstance(node, dict):
        r = node.get("$ref")
        if isinstance(r, str) and not resolve(r):
            problems.append(f"{where}: $ref {r} does not resolve")
        for k, v in node.items():
            walk(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk(v, f"{where}/{i}")

walk(doc, "#")

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
schemes = doc.get("components", {}).get("securitySchemes", {})
documented = {}
op_ids = {}
for path, item in doc.get("paths", {}).items():
    template = re.sub(r"\{[^}/]*\}", "{}", path)
    names = re.findall(r"\{([^}/]*)\}", path)
    for method in METHODS:
        op = item.get(method)
        if op is None:
            continue
        where = f"{method.upper()} {path}"
        documented[(method.upper(), template)] = where
        oid = op.get("operationId")
        if not isinstance(oid, str) or not oid:
            problems.append(f"{where}: no operationId")
        elif oid in op_ids:
            problems.append(f"{where}: operationId {oid} is also {op_ids[oid]}'s")
        else:
            op_ids[oid] = where
        if not isinstance(op.get("responses"), dict) or not op["responses"]:
            problems.append(f"{where}: no responses")
        for req in op.get("security", doc.get("security", [])):
            for name in req:
                if name not in schemes:
                    problems.append(f"{where}: unknown security scheme {name}")
        declared = set()
        for p in item.get("parameters", []) + op.get("parameters", []):
            if "$ref" in p and resolve(p["$ref"]):
                node = doc
                for part in p["$ref"][2:].split("/"):
                    node = node[part]
                p = node
            if p.get("in") == "path":
                declared.add(p.get("name"))
        for n in names:
            if n not in declared:
                problems.append(f"{where}: path parameter {n} is not declared")

# --- the source -------------------------------------------------------------------------
text = {}
for s in sources:
    with open(s, encoding="utf-8") as f:
        text[s] = f.read()
alltext = "\n".join(text.values())

def matcher_paths(name):
    m = re.search(r"static bool " + re.escape(name) + r"\([^)]*\)\s*\{(.*?)\n\}", alltext, re.S)
    if m is None:
        return None
    body = m.group(1)
    prefix = re.search(r'prefix\[\]\s*=\s*"([^"]*)"', body)
    suffix = re.search(r'suffix\[\]\s*=\s*"([^"]*)"', body)
    actions = re.findall(r'strcmp\(\*action,\s*"([^"]*)"\)', body)
    if prefix is None or (suffix is None) == (not actions):
        return None
    if suffix is not None:
        return [prefix.group(1) + "{}" + suffix.group(1)]
    return [prefix.group(1) + "{}/" + a for a in dict.fromkeys(actions)]

branch_re = re.compile(r"^\s*(?:\}\s*else\s+)?if\s*\((.*)\)\s*\{?\s*$")
routes = {}
for s, src in text.items():
    lines = src.split("\n")
    current = None  # (paths, line number, method or None)
    found = []
    for no, line in enumerate(lines, 1):
        b = branch_re.match(line)
        cond = b.group(1) if b else ""
        paths = None
        if b and re.search(r'\bstrcmp\(path,\s*"', cond):
            lit = re.search(r'\bstrcmp\(path,\s*"([^"]*)"\)\s*==\s*0', cond)
            paths = [lit.group(1)] if lit else None
        elif b and re.search(r'\bstrncmp\(path,\s*"', cond):
            lit = re.search(r'\bstrncmp\(path,\s*"([^"]*)",\s*(\d+)\)\s*==\s*0', cond)
            if lit and int(lit.group(2)) == len(lit.group(1)):
                paths = [lit.group(1) + "{}"]
            else:
                problems.append(f"{s}:{no}: strncmp on path the rule cannot read: {cond.strip()}")
                continue
        elif b and re.search(r"\bmatch_\w+\(path\b", cond):
            name = re.search(r"\b(match_\w+)\(path\b", cond).group(1)
            paths = matcher_paths(name)
            if paths is None:
                problems.append(f"{s}:{no}: cannot read the paths of {name}")
                continue
        if b and paths is None and re.search(r'\bstrcmp\(path,\s*"', cond):
            problems.append(f"{s}:{no}: path test the rule cannot read: {cond.strip()}")
            continue
        if paths is not None:
            if current is not None:
                found.append(current)
            current = [paths, no, None]
            continue
        m = re.search(r"\bmethod\s*!=\s*EVHTTP_REQ_([A-Z]+)", line)
        if m and current is not None and current[2] is None:
            current[2] = m.group(1)
    if current is not None:
        found.append(current)
    for paths, no, method in found:
        if method is None:
            problems.append(f"{s}:{no}: route {paths} has no `method != EVHTTP_REQ_...` check")
            continue
        for p in paths:
            routes[(method, p)] = f"{s.rsplit('/', 1)[-1]}:{no}"

if not routes:
    problems.append("no routes found in the source: the extraction rule no longer fits")
for key in sorted(set(routes) - set(documented)):
    problems.append(f"route {key[0]} {key[1]} ({routes[key]}) is not in {doc_path.rsplit('/', 1)[-1]}")
for key in sorted(set(documented) - set(routes)):
    problems.append(f"{documented[key]} is documented but is no route in the source")

for p in problems:
    print(p)
print(f"{len(routes)} routes in the source, {len(documented)} operations documented, {len(problems)} problems")
sys.exit(1 if problems else 0)
PY

check_exit "the document matches the source" 0 python3 "$WORK/check.py" "$DOC" "${SRC[@]}"
[ "$FAILED" -eq 0 ] || echo "$OUT" >&2
expect_contains "routes found" "$OUT" "0 problems"
routes=$(echo "$OUT" | sed -n 's/^\([0-9]*\) routes in the source.*/\1/p')
if [ "${routes:-0}" -ge 14 ]; then pass; else fail "only ${routes:-0} routes found in the source"; fi

# A document that lacks a route fails.
python3 - "$DOC" "$WORK/missing.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
del doc["paths"]["/api/security/blocks/{source}"]["delete"]
json.dump(doc, open(sys.argv[2], "w"))
PY
check_exit "a route missing from the document" 1 python3 "$WORK/check.py" "$WORK/missing.json" "${SRC[@]}"
expect_contains "names the missing route" "$OUT" "route DELETE /api/security/blocks/{} (routes.c"

# A router with a route the document lacks fails.
sed 's|} else if (strcmp(path, "/api/auth/verify") == 0) {|} else if (strcmp(path, "/api/auth/undocumented") == 0) {\n        if (method != EVHTTP_REQ_PUT)\n            method_not_allowed(\&r, "PUT");\n&|' \
    "${SRC[0]}" >"$WORK/routes.c"
if cmp -s "${SRC[0]}" "$WORK/routes.c"; then fail "could not add a route to a copy of routes.c"; fi
check_exit "a route missing from the source" 1 python3 "$WORK/check.py" "$DOC" "$WORK/routes.c" "${SRC[1]}"
expect_contains "names the undocumented route" "$OUT" "route PUT /api/auth/undocumented"

# A branch whose method check is gone fails rather than being skipped.
sed 's|if (method != EVHTTP_REQ_DELETE)|if (0)|' "${SRC[0]}" >"$WORK/routes2.c"
check_exit "a route without a method check" 1 python3 "$WORK/check.py" "$DOC" "$WORK/routes2.c" "${SRC[1]}"
expect_contains "names the branch" "$OUT" "has no \`method != EVHTTP_REQ_...\` check"

# A dangling $ref, a duplicate operationId and a documented route the server lacks fail.
python3 - "$DOC" "$WORK/broken.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["paths"]["/healthz"]["get"]["responses"]["200"] = {"$ref": "#/components/responses/Nowhere"}
doc["paths"]["/metrics"]["get"]["operationId"] = doc["paths"]["/healthz"]["get"]["operationId"]
doc["paths"]["/api/firmware/check"] = {"get": {"operationId": "checkFirmware", "responses": {"200": {"description": "x"}}}}
json.dump(doc, open(sys.argv[2], "w"))
PY
check_exit "broken document" 1 python3 "$WORK/check.py" "$WORK/broken.json" "${SRC[@]}"
expect_contains "dangling \$ref" "$OUT" "does not resolve"
expect_contains "duplicate operationId" "$OUT" "operationId getHealth is also"
expect_contains "a route only in the document" "$OUT" "GET /api/firmware/check is documented but is no route"

finish
