"""Seeds a fresh earshot server for scripts/schemathesis.sh and writes schemathesis' config.

Usage: schemathesis_seed.py BASE_URL ADMIN_TOKEN CONFIG_OUT [WORKER_READY_FILE]

Makes what the API's deep paths need, so that generated requests reach handlers past their
404s: calls in each state (live with an alert; ended with a person's disposition and no
summary; ended with a summary and suggested replies when the assist worker ran beside the
server), a second version of a ruleset, and tokens of every role. Their ids go into the
config as dictionaries that schemathesis draws path parameters from, half the time; the
other half it makes up its own. Prints one line per thing made. Standard library only, so
it runs under the venv's python as well as the system's.
"""

import json
import sys
import time
import urllib.error
import urllib.request

BASE, TOKEN, CONFIG_OUT = sys.argv[1], sys.argv[2], sys.argv[3]
WITH_WORKER = len(sys.argv) > 4 and sys.argv[4] == "worker"


def call(method, path, body=None, content_type="application/json", expect=(200, 201, 204)):
    data = None
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    if status not in expect:
        sys.exit(f"seed: {method} {path} answered {status}: {text}")
    return json.loads(text) if text else None


def start_call(agent):
    return call("POST", "/api/v1/calls", {"agent_id": agent, "source": "replay"})["call_id"]


def say(call_id, seg_id, speaker, text, start_ms):
    call(
        "POST",
        f"/api/v1/calls/{call_id}/segments",
        {"segment_id": seg_id, "speaker": speaker, "text": text, "start_ms": start_ms, "end_ms": start_ms + 900},
    )


def events(call_id):
    return call("GET", f"/api/v1/calls/{call_id}/events?limit=1000")["events"]


def ids_in(call_ids, key):
    """Every value of `key` anywhere in the calls' events (alert_id, suggestion_id, ...)."""
    found = []

    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if k == key and isinstance(x, str) and x not in found:
                    found.append(x)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for c in call_ids:
        walk(events(c))
    return found


CONVERSATION = [
    ("agent", "Thank you for calling Northwind Heating and Air, this is Dana. This call may be recorded, is that okay?"),
    ("customer", "Yes that's fine. My air conditioner stopped cooling last night and it is eighty five degrees upstairs."),
    ("agent", "I'm sorry to hear that. Don't worry, I guarantee we'll have it fixed today."),
    ("customer", "Good, my number is 415 555 0132 and I'd like the earliest visit you have."),
]

# Live calls with an alert (never given to POST /end: segments and acks need a live call);
# live calls for POST /end to end; and a call ended with a disposition set by a person and
# no summary (the worker is not running yet).
live = []
for n in range(2):
    c = start_call(f"agent-live-{n}")
    for i, (who, text) in enumerate(CONVERSATION):
        say(c, f"s{i}", who, text, i * 1000)
    live.append(c)
endable = [start_call(f"agent-endable-{n}") for n in range(3)]
ended = start_call("agent-ended")
say(ended, "s0", "customer", "I want to cancel my maintenance plan.", 0)
call("POST", f"/api/v1/calls/{ended}/end", {"reason": "completed"})
call("PUT", f"/api/v1/calls/{ended}/disposition", {"disposition": "other", "note": "seeded"})
print(f"seed: live calls {', '.join(live)}; calls to end {', '.join(endable)}")
print(f"seed: ended call {ended} (a disposition, no summary)")

summarised = []
if WITH_WORKER:
    # scripts/schemathesis.sh has started `earshot worker` beside the server.
    for n in range(2):
        c = start_call(f"agent-assisted-{n}")
        for i, (who, text) in enumerate(CONVERSATION):
            say(c, f"s{i}", who, text, i * 1000)
        summarised.append(c)
    deadline = time.time() + 60
    while time.time() < deadline:
        if ids_in([summarised[0]], "suggestion_id"):
            break
        time.sleep(0.5)
    for c in summarised:
        call("POST", f"/api/v1/calls/{c}/end", {})
    def summary(c):
        return call("GET", f"/api/v1/calls/{c}/summary", expect=(200, 404)).get("summary")

    while time.time() < deadline and not all(summary(c) for c in summarised):
        time.sleep(0.5)
    print(f"seed: assisted calls {', '.join(summarised)}")

calls = [*live, ended, *summarised]
alerts = ids_in(calls, "alert_id")
suggestions = ids_in(calls, "suggestion_id")
if not alerts:
    sys.exit("seed: the live call raised no alert; the ruleset or the conversation changed")
if WITH_WORKER and not suggestions:
    sys.exit("seed: the assist worker made no suggestion within 60 s")
print(f"seed: {len(alerts)} alert(s), {len(suggestions)} suggestion(s)")

# A second version of home-services (inactive), so activation and version reads have two.
source = call("GET", "/api/v1/rulesets/home-services")["source"]
lines = source.splitlines()
v2 = "\n".join("version: 2" if line.startswith("version:") else line for line in lines) + "\n"
call("POST", "/api/v1/rulesets", v2, content_type="application/yaml")
print("seed: ruleset home-services version 2")

# Tokens of every role. Their ids (never the admin's own: a run that revoked it would end
# its own session) are what DELETE /tokens/{token_id} draws from.
tokens = [
    call("POST", "/api/v1/tokens", {"role": role, "name": f"seed-{role}"})["id"]
    for role in ("agent", "supervisor", "service", "admin")
]
print(f"seed: {len(tokens)} tokens")


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


dictionaries = {
    "call_ids": calls,
    "calls_to_end": endable,
    "alert_ids": alerts,
    "suggestion_ids": suggestions,
    "ruleset_ids": ["home-services", "banking"],
    "versions": [1, 2],
    "token_ids": tokens,
}
with open(CONFIG_OUT, "a") as out:
    out.write("\n# Written by scripts/schemathesis_seed.py: ids that exist on this server.\n")
    out.write("[dictionaries]\n")
    for name, values in dictionaries.items():
        if values:
            out.write(f"{name} = {{ values = {toml_list(values)} }}\n")
    out.write("\n[parameters]\n")
    for param, name in [
        ("path.call_id", "call_ids"),
        ("path.alert_id", "alert_ids"),
        ("path.suggestion_id", "suggestion_ids"),
        ("path.ruleset_id", "ruleset_ids"),
        ("path.version", "versions"),
        ("path.token_id", "token_ids"),
    ]:
        if dictionaries[name]:
            out.write(f'"{param}" = {{ dictionary = "{name}", probability = 0.5 }}\n')
    out.write("""
[[operations]]
include-path = "/api/v1/calls/{call_id}/end"
parameters."path.call_id" = { dictionary = "calls_to_end", probability = 0.5 }
""")
