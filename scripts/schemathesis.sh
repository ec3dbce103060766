#!/usr/bin/env bash
# Property-based API tests: schemathesis (from PyPI) against /openapi.json of a live earshot
# server. Every answer must be a non-5xx that matches the document (status, content type,
# JSON schema), bad input must be refused and good input accepted. docs/schemathesis.md says
# what runs, why some checks are off for some operations, and what it found.
#
#   bash scripts/schemathesis.sh              # the CI form: a few minutes on 2 cores
#   EXAMPLES=300 bash scripts/schemathesis.sh # the long form
#
# Environment:
#   EXAMPLES         test cases per operation and phase (default 100)
#   SEED             schemathesis' seed, to replay a run (default: a fresh one, printed)
#   SERVER_BIN       the earshot binary to test (default: `cargo build` it, target/debug/earshot)
#   POSTGRES_URL     run against PostgreSQL instead of SQLite: a URL to a server where this
#                    role may CREATE DATABASE, e.g. postgres://postgres@127.0.0.1:5432/postgres;
#                    the script makes a database schemathesis_<pid>, and drops it at the end
#   SCHEMATHESIS_VENV  where the virtualenv lives (default target/schemathesis-venv, reused)
#   REPORT_DIR       where the JUnit report, a HAR of every request and the server's log go
#                    (default target/schemathesis)
#
# Needs python3 with venv (on Debian, as root, it installs python3-venv if missing) and
# PyPI; the server runs on a fresh temporary store, on a free port in 19100-19199, with
# --no-assist (an `earshot worker` runs beside it only while the seed data is made).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES="${EXAMPLES:-100}"
VENV="${SCHEMATHESIS_VENV:-target/schemathesis-venv}"
REPORT_DIR="${REPORT_DIR:-target/schemathesis}"

log() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

# --- schemathesis, pinned, in its own virtualenv ----------------------------------------
log "schemathesis $SCHEMATHESIS_VERSION in $VENV"
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian splits venv (ensurepip) out of python3.
    rm -rf "$VENV"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "python3 cannot make a virtualenv: installing Debian's python3-venv"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$VENV"
    else
      echo "python3 -m venv failed: install python3-venv (Debian) and run again" >&2
      exit 1
    fi
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$VENV/bin/schemathesis" --version

# --- the server binary ------------------------------------------------------------------
if [ -z "${SERVER_BIN:-}" ]; then
  log "cargo build -p earshot --bin earshot"
  cargo build -p earshot --bin earshot
  SERVER_BIN=target/debug/earshot
fi
[ -x "$SERVER_BIN" ] || { echo "SERVER_BIN=$SERVER_BIN is not an executable" >&2; exit 1; }

# --- a fresh store and a free port --------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/earshot-schemathesis.XXXXXX")
mkdir -p "$REPORT_DIR"
server_pid=""
worker_pid=""
pg_db=""
cleanup() {
  local status=$?
  for pid in "$worker_pid" "$server_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [ -f "$work/server.log" ]; then cp "$work/server.log" "$REPORT_DIR/server.log"; fi
  if [ -n "$pg_db" ]; then
    psql "$POSTGRES_URL" -qXc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

store_args=(--data-dir "$work/data")
if [ -n "${POSTGRES_URL:-}" ]; then
  command -v psql >/dev/null || { echo "POSTGRES_URL is set but psql is not installed" >&2; exit 1; }
  pg_db="schemathesis_$$"
  psql "$POSTGRES_URL" -qXc "CREATE DATABASE $pg_db"
  db_url="${POSTGRES_URL%/*}/$pg_db"
  store_args=(--database-url "$db_url")
  echo "store: PostgreSQL database $pg_db"
else
  echo "store: SQLite in $work/data"
fi

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

log "earshot serve --no-assist"
port=""
offset=$((RANDOM % 100))
for i in $(seq 0 99); do
  candidate=$((19100 + (offset + i) % 100))
  port_free "$candidate" || continue
  # The server reads DATABASE_URL and EARSHOT_* from the environment: CI sets DATABASE_URL
  # for the tests, and this run must get its own, empty store.
  env -u DATABASE_URL -u EARSHOT_DATA_DIR -u EARSHOT_LISTEN EARSHOT_LOG_FORMAT=json \
    "$SERVER_BIN" serve --listen "127.0.0.1:$candidate" --no-assist "${store_args[@]}" \
    >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    grep -q "^earshot listening on" "$work/server.log" && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q "^earshot listening on" "$work/server.log"; then
    port=$candidate
    break
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  if ! grep -qi "address already in use" "$work/server.log"; then
    echo "the server did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
done
[ -n "$port" ] || { echo "no free port in 19100-19199" >&2; exit 1; }
base="http://127.0.0.1:$port"
token=$(grep -oE 'esk_[0-9a-f]{40}' "$work/server.log" | head -n 1)
[ -n "$token" ] || { echo "the server printed no admin token (not a fresh store?)" >&2; exit 1; }
echo "listening on $base (pid $server_pid), admin token read from its first-start banner"

# --- seed data, with the assist worker running beside the server for a moment -----------
log "seed data"
env -u DATABASE_URL -u EARSHOT_DATA_DIR EARSHOT_LOG_FORMAT=json \
  "$SERVER_BIN" worker "${store_args[@]}" >"$work/worker.log" 2>&1 &
worker_pid=$!
config="$work/schemathesis.toml"
cat >"$config" <<TOML
# Written by scripts/schemathesis.sh.

hooks = "$PWD/scripts/schemathesis_hooks.py"
# Failures found by earlier runs are tried first; kept with the reports, out of the tree.
cache.directory = "$(cd "$REPORT_DIR" && pwd)/cache"
TOML
cat >>"$config" <<'TOML'

# Every check schemathesis has but object_level_authorization, which needs a second
# tenant's credentials (tests/api/tenants.rs covers tenant isolation).
[checks]
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_schema_conformance.enabled = true
response_headers_conformance.enabled = true
negative_data_rejection.enabled = true
positive_data_acceptance.enabled = true
missing_required_header.enabled = true
unsupported_method.enabled = true
allow_header_conformance.enabled = true
use_after_free.enabled = true
ensure_resource_availability.enabled = true
ignored_auth.enabled = true
object_level_authorization.enabled = false

# Warnings that mean the run tested less than it seems (a $ref to nowhere, a regex the
# generator cannot use, a filter or dictionary that matches nothing) fail it. Not
# validation_mismatch: it is expected where positive_data_acceptance is off, below.
[warnings]
fail-on = [
  "missing_auth", "base_url_mismatch", "missing_deserializer", "unused_openapi_auth",
  "unsupported_regex", "unmatched_filter", "unresolvable_reference", "dictionary_mismatch",
]

# Operations where the server checks what JSON Schema cannot say, so that a request the
# document calls valid may still get a (correct, field-naming) 422: positive_data_acceptance
# is off there and every other check stays on. docs/schemathesis.md has the list and why.

# A ruleset upload is YAML checked by the rules compiler (ids, regexes, references).
[[operations]]
include-path = "/api/v1/rulesets"
include-method = "POST"
checks.positive_data_acceptance.enabled = false

# as_of must not be past the call's latest seq, which depends on the call.
[[operations]]
include-path = "/api/v1/calls/{call_id}"
include-method = "GET"
checks.positive_data_acceptance.enabled = false

# A ruleset named in the body must exist in the tenant (422 naming `ruleset` otherwise).
[[operations]]
include-path = "/api/v1/calls"
include-method = "POST"
checks.positive_data_acceptance.enabled = false
TOML
"$VENV/bin/python" scripts/schemathesis_seed.py "$base" "$token" "$config" worker
kill -TERM "$worker_pid" 2>/dev/null || true
wait "$worker_pid" 2>/dev/null || true
worker_pid=""

# --- schemathesis -------------------------------------------------------------------------
seed_args=()
if [ -n "${SEED:-}" ]; then seed_args=(--seed "$SEED"); fi
# (No curl on a fresh Debian: python fetches the document the summary below reads.)
"$VENV/bin/python" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' \
  "$base/openapi.json" >"$work/openapi.json"
log "schemathesis run: $EXAMPLES examples per operation and phase"
set +e
EARSHOT_URL="$base" EARSHOT_TOKEN="$token" "$VENV/bin/schemathesis" --config-file "$config" run "$base/openapi.json" \
  --header "Authorization: Bearer $token" \
  --max-examples "$EXAMPLES" \
  --workers 1 \
  --request-timeout 30 \
  --no-color \
  --report junit,har --report-junit-path "$REPORT_DIR/junit.xml" --report-har-path "$REPORT_DIR/requests.har" \
  "${seed_args[@]}"
status=$?
set -e

# What the generated requests reached: answers per documented operation, so that a run
# that never got past 404 or 422 shows as such.
"$VENV/bin/python" - "$work/openapi.json" "$REPORT_DIR/requests.har" <<'PY' || true
import collections, json, re, sys
paths = json.load(open(sys.argv[1]))["paths"]
ops = [(m.upper(), p, re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"))
       for p, item in paths.items() for m in item if m in ("get", "put", "post", "delete")]
seen = collections.defaultdict(collections.Counter)
for e in json.load(open(sys.argv[2]))["log"]["entries"]:
    method = e["request"]["method"]
    path = re.sub(r"^https?://[^/]+", "", e["request"]["url"]).split("?")[0]
    for m, p, rx in ops:
        if m == method and rx.match(path):
            seen[(m, p)][e["response"]["status"]] += 1
print("answers per operation (status: count):")
for m, p, _ in ops:
    counts = seen[(m, p)]
    print(f"  {m:6} {p:62} " + " ".join(f"{s}:{n}" for s, n in sorted(counts.items())))
PY

if grep -q '"level":"ERROR"' "$work/server.log"; then
  echo "the server logged errors during the run (see $REPORT_DIR/server.log):" >&2
  grep '"level":"ERROR"' "$work/server.log" | head -n 20 >&2
  [ "$status" -ne 0 ] || status=1
fi
echo "schemathesis: exit $status in $(($(date +%s) - started)) s (report: $REPORT_DIR/junit.xml)"
exit "$status"
