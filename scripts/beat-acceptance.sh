#!/usr/bin/env bash
# The periodic scheduler's acceptance run, by hand: three `conveyor beat` processes share one store, a schedule
# fires every second for DURATION seconds, the process that published the latest tick is SIGKILLed midway; then the
# published messages are read from the queue and their conveyor-tick headers checked (count, duplicates, gaps).
# Then three processes read one appsettings.json with two schedules, one is deleted from the file, and the time from
# the file write to each process's removal and to the dropped schedule's last tick is reported.
#
#   scripts/beat-acceptance.sh sqlite            # one SQLite file in a temp folder
#   scripts/beat-acceptance.sh redis [PORT]      # a Redis you run: redis-server --port 6390 --save '' --daemonize yes
#
# Needs the CLI built: dotnet build -c Release src/Conveyor.Cli; and jq, sqlite3, redis-cli.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
CLI="$ROOT/src/Conveyor.Cli/bin/Release/net10.0/Conveyor.Cli"
KIND="${1:-sqlite}"
PORT="${2:-6390}"
DURATION="${DURATION:-30}"
WORK="$(mktemp -d /tmp/beat-acceptance.XXXXXX)"
cd "$WORK"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

if [[ "$KIND" == redis ]]; then
  URL="redis://127.0.0.1:$PORT"
  redis-cli -p "$PORT" DEL machinery_tasks "conveyor:fence:{conveyor:beat:tick}" "conveyor:fence:{conveyor:beat:keep}" "conveyor:fence:{conveyor:beat:drop}" >/dev/null
  bodies() { redis-cli -p "$PORT" --raw LRANGE machinery_tasks 0 -1; }
else
  URL="sqlite://$WORK/conveyor.db"
  bodies() { sqlite3 "$WORK/conveyor.db" "SELECT body FROM messages WHERE queue = 'machinery_tasks';"; }
fi
ts() { date -u +%H:%M:%S.%3N; }

echo "== exactly once: 3 beat processes on $URL, every second, ${DURATION}s, SIGKILL midway"
for i in 1 2 3; do
  "$CLI" beat --broker "$URL" --backend "$URL" --name tick --cron '*/1 * * * * *' echo string:tick >"beat$i.log" 2>&1 &
  PIDS+=($!)
done
for i in 1 2 3; do until grep -q 'Scheduler started' "beat$i.log"; do sleep 0.1; done; done
# The measured window starts once all three run: DURATION whole seconds from the next second on.
sleep "0.$(printf '%03d' $((1000 - 10#$(date +%3N))))"
START=$(date -u +%s)
sleep $((DURATION / 2))
# The process that published the latest tick is the one firing now.
FIRING=$(for i in 1 2 3; do { grep -h 'published' "beat$i.log" || true; } | tail -1 | sed -E "s/.* tick ([^:]+:[^:]+:[^:]+): published.*/\1 $i/"; done | sort | tail -1 | awk '{print $2}')
KILLED_AT=$(ts)
kill -KILL "${PIDS[$((FIRING - 1))]}"
echo "SIGKILL beat$FIRING (pid ${PIDS[$((FIRING - 1))]}) at $KILLED_AT"
sleep $((DURATION - DURATION / 2))
sleep 0.5
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
wait 2>/dev/null || true
PIDS=()

bodies | jq -r '.Headers["conveyor-tick"]' | sort > ticks.txt
COUNT=$(wc -l < ticks.txt)
DUPLICATES=$(uniq -d ticks.txt | wc -l)
FIRST=$(head -1 ticks.txt); LAST=$(tail -1 ticks.txt)
SPAN=$(( $(date -d "$LAST" +%s) - $(date -d "$FIRST" +%s) + 1 ))
IN_WINDOW=$(while read -r t; do s=$(date -d "$t" +%s); if (( s > START && s <= START + DURATION )); then echo "$t"; fi; done < ticks.txt | wc -l)
echo "published in the ${DURATION}s window after all three started: $IN_WINDOW (expected $DURATION); in all: $COUNT, ticks $FIRST .. $LAST ($SPAN seconds)"
echo "duplicate ticks: $DUPLICATES; ticks missing within the span: $((SPAN - COUNT))"
for i in 1 2 3; do echo "beat$i published $(grep -c 'published' "beat$i.log" || true)"; done
python3 - "$WORK/ticks.txt" <<'PY'
import sys, datetime
ticks = [datetime.datetime.fromisoformat(l.strip().replace('Z', '+00:00')) for l in open(sys.argv[1]) if l.strip()]
gaps = [(a, b) for a, b in zip(ticks, ticks[1:]) if (b - a).total_seconds() > 1]
print("gaps:", ", ".join(f"{a:%H:%M:%S} -> {b:%H:%M:%S}" for a, b in gaps) or "none")
PY

echo "== removal while running: 3 beat processes read one appsettings.json; 'drop' is deleted from it"
if [[ "$KIND" == redis ]]; then redis-cli -p "$PORT" DEL machinery_tasks >/dev/null; else sqlite3 "$WORK/conveyor.db" "DELETE FROM messages;"; fi
cat > appsettings.json <<'JSON'
{ "Conveyor": { "Schedules": {
  "keep": { "Interval": "00:00:01", "Task": "echo", "Args": [ "string:keep" ] },
  "drop": { "Cron": "*/1 * * * * *", "Task": "echo", "Args": [ "string:drop" ] } } } }
JSON
for i in 1 2 3; do
  "$CLI" beat --broker "$URL" --backend "$URL" >"cfg$i.log" 2>&1 &
  PIDS+=($!)
done
sleep 6
REMOVED_AT=$(ts)
cat > appsettings.json <<'JSON'
{ "Conveyor": { "Schedules": {
  "keep": { "Interval": "00:00:01", "Task": "echo", "Args": [ "string:keep" ] } } } }
JSON
sleep 5
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
wait 2>/dev/null || true
PIDS=()
echo "file rewritten at $REMOVED_AT"
for i in 1 2 3; do echo "cfg$i: $(grep -h 'Schedule drop removed' "cfg$i.log" | cut -c1-12 | sed 's/^/removed at /')"; done
echo "last 'drop' tick published: $(bodies | jq -r 'select(.Headers["conveyor-schedule"] == "drop") | .Headers["conveyor-tick"]' | sort | tail -1)"
echo "'keep' ticks after the removal: $(bodies | jq -r 'select(.Headers["conveyor-schedule"] == "keep") | .Headers["conveyor-tick"]' | sort | awk -v t="$REMOVED_AT" '{ split($0, a, "T"); if (substr(a[2], 1, 12) > t) n++ } END { print n + 0 }')"
echo "logs in $WORK"
