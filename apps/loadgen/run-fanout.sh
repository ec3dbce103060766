#!/usr/bin/env bash
# One run of the fan-out benchmark (docs/benchmarks.md, "Hub: one call fanned out to 10,000
# WebSocket subscribers"): builds the server and the load tool in release, raises the
# open-files limit for both, starts the server on a fresh store (a new SQLite directory, or a
# new database on the local Postgres), reads the one-time admin token from its stdout, and
# runs `earshot-load fanout` against it with the server's pid, so the tool reads the server's
# memory from /proc/<pid>/status: 10,000 WebSocket subscribers on one call, their idle
# memory, then the call's segments delivered to all of them.
#
#   apps/loadgen/run-fanout.sh postgres                  # 10,000 subscribers, 60 segments
#   apps/loadgen/run-fanout.sh sqlite 2000 -- --json     # extra arguments go to the tool
#
# Environment: SEGMENTS (60), RATE (1 segment/s), IDLE (5 s idle before the memory is read),
# PORT (19300), PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres; trust auth), KEEP=1
# keeps the data directory / database, SKIP_BUILD=1 skips the build, SERVER_BIN runs another
# earshot binary (to compare a change), LOAD_BIN another earshot-load, SERVER_ARGS are extra `earshot serve` flags,
# RUST_LOG is passed to the server.
# Exit status: the tool's (2 when anything was lost, duplicated or refused).
set -euo pipefail

store=${1:?usage: run-fanout.sh sqlite|postgres [SUBSCRIBERS] [-- earshot-load fanout args…]}
shift
subscribers=10000
if [[ $# -gt 0 && $1 != -- ]]; then
    subscribers=$1
    shift
fi
[[ ${1:-} == -- ]] && shift

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
port=${PORT:-19300}
pghost=${PGHOST:-127.0.0.1}
pgport=${PGPORT:-5432}
pguser=${PGUSER:-postgres}

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    cargo build --release -q -p earshot -p earshot-load
fi

# One socket per subscriber on each side of loopback, plus the server's files and database
# connections: raise the soft limit as far as the hard one allows (the tool also raises its
# own). Both processes inherit it.
want=$((subscribers + 1024))
hard=$(ulimit -Hn)
if [[ $hard != unlimited && $hard -lt $want ]]; then
    echo "run-fanout: the hard open-files limit ($hard) is below the $want this run needs" >&2
    want=$hard
fi
ulimit -n "$want" 2>/dev/null || echo "run-fanout: could not raise ulimit -n (now $(ulimit -n))" >&2
# Each client socket takes an ephemeral port of the one source address (127.0.0.1).
read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
if ((hi - lo + 1 < subscribers + 100)); then
    echo "run-fanout: the ephemeral port range ($lo–$hi) is smaller than $subscribers sockets" >&2
fi

work=$(mktemp -d)
db=""
case $store in
    sqlite)
        export EARSHOT_DATA_DIR=$work/data
        unset DATABASE_URL
        ;;
    postgres)
        db="fanout_$(date +%Y%m%d_%H%M%S)_$$"
        psql -q -h "$pghost" -p "$pgport" -U "$pguser" -c "create database $db"
        export DATABASE_URL="postgres://$pguser@$pghost:$pgport/$db"
        ;;
    *)
        echo "run-fanout: the store is sqlite or postgres, not $store" >&2
        exit 64
        ;;
esac

server_pid=""
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid"
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "run-fanout: kept $work${db:+ and database $db}" >&2
        return
    fi
    rm -rf "$work"
    if [[ -n $db ]]; then
        psql -q -h "$pghost" -p "$pgport" -U "$pguser" -c "drop database if exists $db" || true
    fi
}
trap cleanup EXIT

server_args=(serve --listen "127.0.0.1:$port")
if [[ -n ${SERVER_ARGS:-} ]]; then
    read -r -a extra_server_args <<<"$SERVER_ARGS"
    server_args+=("${extra_server_args[@]}")
fi
"${SERVER_BIN:-$target/release/earshot}" "${server_args[@]}" \
    >"$work/server.out" 2>"$work/server.log" &
server_pid=$!

token=""
for _ in $(seq 1 600); do
    token=$(grep -o 'esk_[0-9a-f]\{40\}' "$work/server.out" | head -n1 || true)
    [[ -n $token ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "run-fanout: the server exited; its log:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z $token ]]; then
    echo "run-fanout: no admin token on the server's stdout (was the store not fresh?)" >&2
    exit 1
fi

cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$server_pid/stat"
}

echo "run-fanout: $store, $subscribers subscribers, server pid $server_pid on port $port (ulimit -n $(ulimit -n))" >&2
cpu_before=$(cpu_seconds)
status=0
TIMEFORMAT="run-fanout: earshot-load CPU: %U s user + %S s system over %R s"
# The token goes in the environment, not on the command line (where `ps` would show it).
time EARSHOT_TOKEN=$token "${LOAD_BIN:-$target/release/earshot-load}" fanout --url "http://127.0.0.1:$port" \
    --server-pid "$server_pid" --subscribers "$subscribers" --segments "${SEGMENTS:-60}" \
    --rate "${RATE:-1}" --idle "${IDLE:-5}" "$@" || status=$?
cpu_after=$(cpu_seconds)
echo "run-fanout: server CPU during setup + run: $(awk -v a="$cpu_before" -v b="$cpu_after" 'BEGIN { printf "%.1f", b - a }') s (user + system)" >&2
warnings=$(grep -c -E '"level":"(WARN|ERROR)"' "$work/server.log" || true)
echo "run-fanout: server log lines at WARN or ERROR: $warnings" >&2
exit "$status"
