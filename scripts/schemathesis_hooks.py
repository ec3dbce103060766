"""schemathesis hooks for scripts/schemathesis.sh.

A segment body the document calls valid is refused when its times say otherwise: end_ms
before start_ms, a batch out of time order or with an id twice, or a final segment that
starts before the call's previous one (the server answers 422 naming the field; JSON Schema
cannot say any of it). Left alone, nearly every generated body fails one of these and the
ingest path past validation is never reached. This hook puts the times of schema-valid
bodies in order, on a clock that moves forward between requests, and makes batch ids
distinct; bodies generated to be invalid are left as they are.

Even an ordered body is refused (409) once its call has ended, and the run ends calls: the
seeded ones through POST /end, its own through links. So every other schema-valid body goes
to a live call this hook starts for the purpose (a new one every ten bodies), using
EARSHOT_URL and EARSHOT_TOKEN from the environment.
"""

import itertools
import json
import os
import urllib.request

import schemathesis
from schemathesis.core.parameters import ParameterLocation

# Milliseconds; each valid body starts after the previous one, far below i64::MAX.
_clock = itertools.count(start=1_000_000, step=100_000)


def _in_order(segments):
    base = next(_clock)
    seen = set()
    for i, seg in enumerate(segments):
        if not isinstance(seg, dict):
            return
        start, end = seg.get("start_ms"), seg.get("end_ms")
        if not (isinstance(start, int) and isinstance(end, int)):
            return
        length = abs(end - start) % 60_000
        seg["start_ms"] = base + i * 60_000 + start % 1_000
        seg["end_ms"] = seg["start_ms"] + length
        sid = seg.get("segment_id")
        if isinstance(sid, str) and sid in seen:
            seg["segment_id"] = f"{sid[:120]}~{i}"
        seen.add(seg.get("segment_id"))


_valid_bodies = itertools.count()
_live_call = None


def _start_call():
    req = urllib.request.Request(
        os.environ["EARSHOT_URL"] + "/api/v1/calls",
        data=json.dumps({"agent_id": "schemathesis-hook"}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {os.environ['EARSHOT_TOKEN']}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())["call_id"]


@schemathesis.hook("map_case").apply_to(method="POST", path="/api/v1/calls/{call_id}/segments")
def segments_in_time_order(ctx, case):
    meta = case.meta
    if meta is None or meta.is_negative_at(ParameterLocation.BODY) or not isinstance(case.body, dict):
        return case
    if isinstance(case.body.get("segments"), list):
        _in_order(case.body["segments"])
    else:
        _in_order([case.body])
    n = next(_valid_bodies)
    if n % 2 == 0 and not meta.is_negative_at(ParameterLocation.PATH):
        global _live_call
        if _live_call is None or n % 20 == 0:
            _live_call = _start_call()
        case.path_parameters = {**(case.path_parameters or {}), "call_id": _live_call}
    return case
