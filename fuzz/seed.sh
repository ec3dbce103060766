#!/usr/bin/env bash
# Builds the seed corpora fuzz/corpus/<target>/ from the repo's transcripts and rulesets and
# the shared data sets (../shared/data beside the checkout, or $SHARED_DATA). Seeds are
# generated, not committed; files the fuzzer added to a corpus are left alone. Needs jq.
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$fuzz")"
shared="${SHARED_DATA:-$repo/../shared/data}"
corpus="$fuzz/corpus"
command -v jq >/dev/null || { echo "seed.sh needs jq (apt-get install jq)" >&2; exit 1; }
mkdir -p "$corpus"/{redact,rules_match,ruleset_parse,transcript_formats,ws_message,ingest_body}

hv=()
[ -d "$shared/harper-valley/transcript" ] && hv=("$shared"/harper-valley/transcript/*.json)
abcd="$shared/abcd/abcd_sample.json"
[ -f "$abcd" ] || abcd=""
[ ${#hv[@]} -gt 0 ] && [ -n "$abcd" ] || echo "note: no shared data at $shared; seeding from the repo only" >&2

# One segment text per line, for every transcript: earshot, Harper Valley, ABCD.
texts() {
  for f in "$repo"/transcripts/*.json; do echo "earshot-$(basename "$f" .json) $f .segments[].text"; done
  for f in "${hv[@]}"; do echo "hv-$(basename "$f" .json) $f .[].human_transcript"; done
  if [ -n "$abcd" ]; then
    for i in $(seq 0 $(($(jq length "$abcd") - 1))); do
      echo "abcd-$i $abcd .[$i].original[]|select(.[0]!=\"action\")|.[1]"
    done
  fi
}

# redact: a flags byte (0: the default policy; 0x83: strict, 6 digits) + the call's lines.
texts | while read -r name file filter; do
  jq -r "$filter" "$file" >"$corpus/redact/.lines"
  { printf '\0'; cat "$corpus/redact/.lines"; } >"$corpus/redact/$name"
  { printf '\x83'; head -n 12 "$corpus/redact/.lines"; } >"$corpus/redact/$name-strict"
  n=0
  while IFS= read -r line && [ $n -lt 40 ]; do
    n=$((n + 1))
    { printf '\0'; printf '%s' "$line"; } >"$corpus/redact/$name-$n"
  done <"$corpus/redact/.lines"
done
rm -f "$corpus/redact/.lines"
i=0
while IFS= read -r line; do
  i=$((i + 1))
  { printf '\0'; printf '%s' "$line"; } >"$corpus/redact/doc-$i"
  { printf '\xe0\x01\x02\x03\x04\x05\x06\x07\x08\x09\x00\x01'; printf '%s' "$line"; } >"$corpus/redact/doc-$i-custom"
done <<'EOF'
sure it's four one five five five five oh one three two
my card number is four one one one
one one one one one one one one one one one one
(415) 555-0132 or 4111 1111 1111 1111, social 078-05-1120
GB82 WEST 1234 5698 7654 32 and john.smith@gmail.com on 03/14/1985
john dot smith at gmail dot com, born on march fourteenth nineteen eighty five
it's $129 at 2:30, 1,250.00 dollars, call4155550132, +44 20 7946 0958
my zip is nine oh two one oh [noise] uh triple seven double two fifty five
EOF

# ruleset_parse: the default rulesets, each of their rules alone, and small documents.
for f in "$repo"/rulesets/*.yaml; do
  base="$(basename "$f" .yaml)"
  cp "$f" "$corpus/ruleset_parse/$base.yaml"
  # Header up to `rules:`, then one rule (a block starting at `  - id:`) per file.
  awk -v out="$corpus/ruleset_parse/$base-rule-" '
    !started { head = head $0 "\n"; if ($0 ~ /^rules:/) started = 1; next }
    /^  - id:/ { n++; printf "%s", head > (out n ".yaml") }
    n { print >> (out n ".yaml") }
  ' "$f"
done
printf 'id: x\nversion: 1\nrules:\n  - id: a\n    kind: prohibited\n    message: m\n    match: {phrases: ["guarantee*"], except: ["(can'"'"'t|cannot) guarantee*"]}\n' >"$corpus/ruleset_parse/tiny-prohibited.yaml"
printf 'id: x\nversion: 2\nsplit_window_ms: 100\nrules:\n  - {id: r, kind: required, title: t, match: {regex: ["\\\\bhello\\\\b"]}, deadline: {within_ms: 10, before: [c]}}\n  - {id: c, kind: trigger, title: t, body: b, speaker: any, languages: [en, ar-AE], match: {near: [{a: [dollars], b: ["cost*"], within: 3}]}, max_fires: 1}\n' >"$corpus/ruleset_parse/tiny-flow.yaml"
printf 'id: x\nversion: 1\nrules: &r\n  - id: a\n    kind: trigger\n    title: t\n    body: b\n    match: {phrases: [a]}\n' >"$corpus/ruleset_parse/tiny-anchor.yaml"

# transcript_formats: every file whole, and small pieces of the large ones.
for f in "$repo"/transcripts/*.json; do cp "$f" "$corpus/transcript_formats/earshot-$(basename "$f")"; done
for f in "${hv[@]}"; do
  cp "$f" "$corpus/transcript_formats/hv-$(basename "$f")"
  jq -c '.[:3]' "$f" >"$corpus/transcript_formats/hv-small-$(basename "$f")"
done
if [ -n "$abcd" ]; then
  for i in $(seq 0 $(($(jq length "$abcd") - 1))); do
    jq -c ".[$i] | .original |= .[:6] | del(.delexed)" "$abcd" >"$corpus/transcript_formats/abcd-$i.json"
    jq -c "[.[$i] | .original |= .[:3] | del(.delexed, .scenario)]" "$abcd" >"$corpus/transcript_formats/abcd-list-$i.json"
  done
fi

# ws_message: `segments` messages made of the transcripts, and the other message types.
for f in "$repo"/transcripts/*.json; do
  base="$(basename "$f" .json)"
  jq -c '{type: "segments", call_id: "0193a5b0-7e1c-7cc3-8d4f-5f6e7a8b9c0d", ref: "b1",
          segments: [.segments | to_entries[] | {segment_id: "seg-\(.key)", speaker: .value.speaker,
          text: .value.text, start_ms: .value.start_ms, end_ms: .value.end_ms}]}' "$f" \
    >"$corpus/ws_message/$base.json"
  jq -c '.segments[:2][] | {type: "segments", call_id: "0193a5b0-7e1c-7cc3-8d4f-5f6e7a8b9c0d",
          segments: [{segment_id: "s1", speaker, text, start_ms, end_ms, is_final: false, confidence: 0.9}]}' "$f" \
    | split -l 1 - "$corpus/ws_message/$base-one-"
done
# ingest_body: the same segments as HTTP bodies, a batch or one segment.
for f in "$repo"/transcripts/*.json; do
  base="$(basename "$f" .json)"
  jq -c '{segments: [.segments | to_entries[] | {segment_id: "seg-\(.key)", speaker: .value.speaker,
          text: .value.text, start_ms: .value.start_ms, end_ms: .value.end_ms}]}' "$f" \
    >"$corpus/ingest_body/$base.json"
  jq -c '.segments[:2][] | {segment_id: "s1", speaker, text, start_ms, end_ms, is_final: true, confidence: 0.5}' "$f" \
    | split -l 1 - "$corpus/ingest_body/$base-one-"
done
for msg in \
  '{"type": "subscribe", "call_id": "0193a5b0-7e1c-7cc3-8d4f-5f6e7a8b9c0d", "since_seq": 0, "ref": "p1"}' \
  '{"type": "unsubscribe", "call_id": "0193a5b0-7e1c-7cc3-8d4f-5f6e7a8b9c0d"}' \
  '{"type": "subscribe_tenant"}' \
  '{"type": "segments", "call_id": "x", "segments": []}' \
  '{"type": "segments", "call_id": "x", "segments": [{"segment_id": "s", "speaker": "agent", "text": " ", "start_ms": 5, "end_ms": 1}]}'; do
  printf '%s' "$msg" >"$corpus/ws_message/msg-$(printf '%s' "$msg" | md5sum | cut -c1-8)"
done

# rules_match reads structured input (`arbitrary`): random bytes are as good a start as any.
for n in $(seq 1 16); do
  [ -f "$corpus/rules_match/random-$n" ] || head -c $((n * 64)) /dev/urandom >"$corpus/rules_match/random-$n"
done

for t in redact rules_match ruleset_parse transcript_formats ws_message ingest_body; do
  printf '%-20s %5d seeds\n' "$t" "$(find "$corpus/$t" -type f | wc -l)"
done
