#!/usr/bin/env bash
# Instructions per call, counted by valgrind's callgrind: a measure of the server's CPU work that
# does not move with the machine's load, where req/s and CPU time on a shared 2-core VM vary by
# a third from one minute to the next. Compare two builds with it before timing them.
#
# Usage: bench/instructions.sh [path/to/trent]   (default: target/release/trent)
# Environment: OP (the operation counted, default Encrypt), WORKLOAD (the throughput bench's
# workload that drives it, default "Encrypt 4 KiB"), SECONDS_COUNTED (default 15), KEEP (a file
# to copy callgrind's profile to, for `callgrind_annotate --inclusive=yes KEEP`).
#
# It runs the throughput bench (SQLite, c = 8) against the server under callgrind, zeroes the
# counters once calls flow, counts for SECONDS_COUNTED seconds, and divides by the calls the
# server's own request counter saw in that window. Printed per call: all instructions, those of
# SHA-256's block function (callgrind's CPU has no SHA extensions, so aws-lc runs its AVX code:
# about 300k instructions a call that the real CPU does in a few microseconds), the request path
# (`listener::handle`: from authentication to the response body, on the HTTP workers), and the
# writer's store commits (which depend on the batch size, small under valgrind's slowness).
# Requires valgrind; the server runs about fifty times slower under it.
set -euo pipefail
cd "$(dirname "$0")/.."
server=$(realpath "${1:-target/release/trent}")
op=${OP:-Encrypt}
workload=${WORKLOAD:-Encrypt 4 KiB}
counted=${SECONDS_COUNTED:-15}
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }
[ -x "$server" ] || { echo "no server binary at $server (cargo build --release)" >&2; exit 1; }
bench=$(cargo bench --bench throughput --no-run 2>&1 | grep -o 'target/release/deps/throughput-[0-9a-f]*' | head -1)
[ -n "$bench" ] || { echo "the throughput bench did not build" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/trent" <<EOF
#!/usr/bin/env bash
exec valgrind --tool=callgrind --callgrind-out-file=$work/callgrind.%p "$server" "\$@"
EOF
chmod +x "$work/trent"

TRENT_BIN="$work/trent" BENCH_STORES=sqlite BENCH_CONCURRENCY=8 BENCH_WORKLOADS="$workload" \
    BENCH_SECONDS=$((counted + 25)) BENCH_RATIO_ROUNDS=0 "$bench" > "$work/bench.out" 2>&1 &
bench_pid=$!

# The server under valgrind, its admin address, and calls flowing.
pid="" admin=""
for _ in $(seq 1 180); do
    pid=$(pgrep -f "callgrind.*$server serve" | head -1 || true)
    if [ -n "$pid" ]; then
        admin=$(tr '\0' ' ' < "/proc/$pid/cmdline" | grep -o 'admin-listen [0-9.:]*' | cut -d' ' -f2 || true)
        [ -n "$admin" ] && curl -sf "http://$admin/metrics" > /dev/null && break
    fi
    sleep 1
done
[ -n "$admin" ] || { echo "the server did not start" >&2; cat "$work/bench.out" >&2; exit 1; }
calls() {
    curl -s "http://$admin/metrics" |
        awk -v m="trent_request_duration_seconds_count{operation=\"$op\"}" '$1 == m { print $2 }'
}
for _ in $(seq 1 120); do
    n=$(calls)
    [ -n "$n" ] && [ "${n%.*}" -gt 50 ] && break
    sleep 1
done

callgrind_control -z "$pid" > /dev/null 2>&1
first=$(calls)
sleep "$counted"
last=$(calls)
callgrind_control -d "$pid" > /dev/null 2>&1
wait "$bench_pid" || true

out=$(ls -S "$work"/callgrind.*.* | head -1)
[ -n "${KEEP:-}" ] && cp "$out" "$KEEP"
callgrind_annotate --inclusive=yes "$out" 2>/dev/null > "$work/inclusive.txt"
python3 - "$work/inclusive.txt" "$first" "$last" "$op" <<'PY'
import re, sys
text, first, last, op = open(sys.argv[1]).read(), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
calls = last - first
def total(pattern):
    m = re.search(r"^\s*([\d,]+) .*" + pattern, text, re.M)
    return int(m.group(1).replace(",", "")) if m else 0
program = total(r"PROGRAM TOTALS")
sha = total(r"sha256_block_data_order")
handle = total(r"trent_service::listener::handle::")
commit = total(r"BlockingWrites>::commit_visible_now")
print(f"{op}: {int(calls)} calls counted")
for name, value in [("all", program), ("SHA-256 blocks", sha), ("all but SHA-256", program - sha),
                    ("request path", handle), ("store commits", commit)]:
    print(f"  {name:18} {value / calls:12,.0f} instructions per call")
PY
