#!/usr/bin/env bash
# Conveyor side by side with the raw engine client on the same workload: `conveyor bench -n N --workers W` and
# bench/Conveyor.RawProbe with the same N and W (a producer process and W worker processes each), interleaved,
# RUNS times each, then the medians and the ratio raw / Conveyor. See bench/README.md.
#
# Usage: bench/side-by-side.sh [-n 50000] [--workers 2] [--runs 3] [--redis HOST:PORT] [--amqp URL] [--all-states] [--scripts]
#   --redis HOST:PORT  a Redis to use; without it a private redis-server (no persistence) is started on a free
#                      loopback port and stopped at the end
#   --amqp URL         also compare RabbitMQ broker + Redis backend (amqp://guest:guest@127.0.0.1:5672/)
#   --all-states       the probe writes RECEIVED and STARTED too, as Conveyor does (default: PENDING and SUCCESS)
#   --scripts          the probe sends each batch's Redis commands as one script call
#   --no-build         use the Release builds already there
# Needs: the .NET SDK, jq, and redis-server unless --redis is given.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TASKS=50000 WORKERS=2 RUNS=3 REDIS="" AMQP="" PROBE_FLAGS=() BUILD=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        -n) TASKS="$2"; shift 2 ;;
        --workers) WORKERS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --redis) REDIS="$2"; shift 2 ;;
        --amqp) AMQP="$2"; shift 2 ;;
        --all-states|--scripts) PROBE_FLAGS+=("$1"); shift ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "side-by-side.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
command -v jq >/dev/null || { echo "side-by-side.sh: needs jq (apt-get install -y jq)" >&2; exit 2; }

CLI="$ROOT/src/Conveyor.Cli/bin/Release/net10.0/Conveyor.Cli.dll"
PROBE="$ROOT/bench/Conveyor.RawProbe/bin/Release/net10.0/Conveyor.RawProbe.dll"
if [[ $BUILD == 1 ]]; then
    echo "building Conveyor.Cli and Conveyor.RawProbe (Release)..."
    dotnet build "$ROOT/src/Conveyor.Cli" -c Release -v quiet -nologo >/dev/null
    dotnet build "$ROOT/bench/Conveyor.RawProbe" -c Release -v quiet -nologo >/dev/null
fi

WORK="$(mktemp -d)"
REDIS_PID=""
cleanup() {
    if [[ -n "$REDIS_PID" ]]; then
        redis-cli -p "${REDIS##*:}" shutdown nosave >/dev/null 2>&1 || kill "$REDIS_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z "$REDIS" ]]; then
    command -v redis-server >/dev/null || { echo "side-by-side.sh: no redis-server; install it or pass --redis HOST:PORT" >&2; exit 2; }
    port=""
    for _ in $(seq 50); do
        candidate=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
    done
    [[ -n "$port" ]] || { echo "side-by-side.sh: found no free port" >&2; exit 2; }
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$WORK" --logfile "$WORK/redis.log" &
    REDIS_PID=$!
    REDIS="127.0.0.1:$port"
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    echo "private Redis on $REDIS (no persistence)"
fi

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# compare NAME CONVEYOR-ARGS... -- PROBE-ARGS...
compare() {
    local name="$1"; shift
    local conveyor_args=() probe_args=()
    while [[ "$1" != "--" ]]; do conveyor_args+=("$1"); shift; done
    shift
    probe_args=("$@")
    : >"$WORK/conveyor.jsonl"; : >"$WORK/probe.jsonl"
    echo
    echo "== $name: $TASKS tasks, $WORKERS worker processes, $RUNS runs each, interleaved (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    for run in $(seq "$RUNS"); do
        dotnet "$CLI" bench -n "$TASKS" --workers "$WORKERS" --warmup 0 --json "${conveyor_args[@]}" | tail -n 1 >>"$WORK/conveyor.jsonl"
        jq -r --arg run "$run" '"run \($run) conveyor: \(.tasks_per_second) tasks/s, lost \(.lost), Redis \(.redis[0].calls_per_task) calls and \(.redis[0].cpu_us_per_task) µs CPU per task, CPU producer \(.producer_cpu_seconds) s, workers \(.workers_cpu_seconds) s"' <"$WORK/conveyor.jsonl" | tail -n 1
        dotnet "$PROBE" -n "$TASKS" --workers "$WORKERS" --json "${probe_args[@]}" "${PROBE_FLAGS[@]}" | tail -n 1 >>"$WORK/probe.jsonl"
        jq -r --arg run "$run" '"run \($run) raw:      \(.tasks_per_second) tasks/s, lost \(.lost), Redis \(.redis_calls_per_task) calls and \(.redis_cpu_us_per_task) µs CPU per task, CPU producer \(.producer_cpu_seconds) s, workers \(.workers_cpu_seconds) s"' <"$WORK/probe.jsonl" | tail -n 1
    done

    local c_tps p_tps c_calls p_calls c_cpu p_cpu c_net p_net
    c_tps=$(jq '.tasks_per_second' "$WORK/conveyor.jsonl" | median)
    p_tps=$(jq '.tasks_per_second' "$WORK/probe.jsonl" | median)
    c_calls=$(jq '.redis[0].calls_per_task' "$WORK/conveyor.jsonl" | median)
    p_calls=$(jq '.redis_calls_per_task' "$WORK/probe.jsonl" | median)
    c_cpu=$(jq '.redis[0].cpu_us_per_task' "$WORK/conveyor.jsonl" | median)
    p_cpu=$(jq '.redis_cpu_us_per_task' "$WORK/probe.jsonl" | median)
    c_net=$(jq --argjson n "$TASKS" '(.producer_cpu_seconds + .workers_cpu_seconds) * 1e6 / $n' "$WORK/conveyor.jsonl" | median)
    p_net=$(jq --argjson n "$TASKS" '(.producer_cpu_seconds + .workers_cpu_seconds) * 1e6 / $n' "$WORK/probe.jsonl" | median)
    echo "-- medians        tasks/s   Redis calls/task   Redis CPU µs/task   .NET CPU µs/task (producer + workers, during the run)"
    printf '   conveyor   %10.0f   %16.1f   %17.1f   %17.1f\n' "$c_tps" "$c_calls" "$c_cpu" "$c_net"
    printf '   raw        %10.0f   %16.1f   %17.1f   %17.1f\n' "$p_tps" "$p_calls" "$p_cpu" "$p_net"
    awk -v c="$c_tps" -v p="$p_tps" 'BEGIN { printf "   ratio raw / conveyor: %.2f (Conveyor reaches %.0f%% of the raw client'"'"'s throughput)\n", p / c, 100 * c / p }'
}

compare "Redis broker + backend" --broker "redis://$REDIS" --backend "redis://$REDIS" -- --redis "$REDIS"
if [[ -n "$AMQP" ]]; then
    compare "RabbitMQ broker + Redis backend" --broker "$AMQP" --backend "redis://$REDIS" -- --redis "$REDIS" --amqp "$AMQP"
fi
