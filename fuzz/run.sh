#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 20, the CI form) and fails if any finds a
# crash, naming the target and the input that crashed it. Usage: fuzz/run.sh [SECONDS]
# [TARGET...]. Needs the nightly toolchain (installed here, never downloaded) and jq for the
# seeds; installs cargo-fuzz from crates.io when it is missing. docs/fuzzing.md explains the
# targets. Set FUZZ_TARGET_DIR to keep the (slow, sanitizer-instrumented) build elsewhere.
set -uo pipefail
seconds="${1:-20}"
shift || true
fuzz="$(cd "$(dirname "$0")" && pwd)"
cd "$fuzz/.."

all=(redact rules_match ruleset_parse transcript_formats ws_message ingest_body)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi
toolchain=nightly
# One feature set for every target, so that switching targets never rebuilds shared crates.
flags=(--features ws)
[ -n "${FUZZ_TARGET_DIR:-}" ] && flags+=(--target-dir "$FUZZ_TARGET_DIR")
# The server links SQLite's amalgamation, whose same-named static tables in two functions
# AddressSanitizer's one-definition-rule check takes for a violation (a false positive).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  echo "fuzz: the $toolchain toolchain is not installed (rustup toolchain install $toolchain)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked || exit 1
fi

bash "$fuzz/seed.sh" || exit 1

echo "fuzz: building ${targets[*]}"
start=$(date +%s)
cargo "+$toolchain" fuzz build "${flags[@]}" || { echo "fuzz: build failed" >&2; exit 1; }
echo "fuzz: built in $(($(date +%s) - start)) s"

mkdir -p "$fuzz/logs"
failed=()
summary=()
for t in "${targets[@]}"; do
  log="$fuzz/logs/$t.log"
  dict=()
  [ -f "$fuzz/dict/$t.dict" ] && dict=(-dict="$fuzz/dict/$t.dict")
  echo "fuzz: $t for $seconds s (log: ${log#"$PWD/"})"
  cargo "+$toolchain" fuzz run "${flags[@]}" "$t" -- \
    -max_total_time="$seconds" -timeout=30 -print_final_stats=1 "${dict[@]}" >"$log" 2>&1
  status=$?
  # libFuzzer's last status line: "#RUNS DONE cov: N ft: N corp: N/Nb … exec/s: N rss: NMb".
  done_line=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{print $2}')
  cov=$(grep -oE 'cov: [0-9]+' <<<"$done_line" | awk '{print $2}')
  ft=$(grep -oE 'ft: [0-9]+' <<<"$done_line" | awk '{print $2}')
  corp=$(grep -oE 'corp: [0-9]+' <<<"$done_line" | awk '{print $2}')
  summary+=("$(printf '%-20s runs=%-10s cov=%-6s ft=%-6s corpus=%-6s status=%s' \
    "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$status")")
  echo "  $done_line"
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1 | sed 's/Test unit written to //')
    echo "fuzz: $t FAILED (exit $status); crash input: ${artifact:-none written, see the log}" >&2
    grep -E -A3 "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" | head -n 12 >&2
    [ -n "$artifact" ] && echo "  reproduce: cargo +$toolchain fuzz run ${flags[*]} $t $artifact" >&2
  fi
done

echo
echo "fuzz: $seconds s per target on $(nproc) cores, $(date -u +%Y-%m-%d)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crash in ${#targets[@]} targets"
