#!/usr/bin/env bash
# Runs Conveyor's whole test suite on a fresh Debian machine (as root, CI=true, no stdin is fine).
#
#  1. Installs Debian's redis-server and rabbitmq-server when missing (apt-get, services not auto-started), and
#     chromium for the dashboard's browser tests (Playwright drives /usr/bin/chromium; a missing one fails them).
#  2. Starts one private Redis and one private RabbitMQ node on loopback, on free ports, with all their
#     state in a temp dir; a system-wide Redis/RabbitMQ (if any) is never touched.
#  3. Exports CONVEYOR_TEST_REDIS=127.0.0.1:PORT and CONVEYOR_TEST_AMQP=amqp://guest:guest@127.0.0.1:PORT/
#     With them, TLS and accounts: a throwaway CA and server certificate (openssl, in the temp dir, never kept),
#     the same Redis on a --tls-port too with an ACL user limited to keys and channels under conveyor-tls:*, and a
#     RabbitMQ TLS listener with a user allowed on one vhost only (conveyor-tls); exported as
#     CONVEYOR_TEST_REDIS_TLS=rediss://conveyor-tls:PASSWORD@127.0.0.1:PORT?ca=CA.pem and
#     CONVEYOR_TEST_AMQP_TLS=amqps://conveyor-tls:PASSWORD@127.0.0.1:PORT/conveyor-tls?ca=CA.pem (random passwords).
#     And a Sentinel setup for the failover test: a primary, two replicas and three sentinels (redis-server --sentinel)
#     on loopback, exported as CONVEYOR_TEST_SENTINEL=redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/conveyor
#     (the test kills the primary: one failover per run).
#     The RabbitMQ node runs the rabbitmq_management plugin with its HTTP API on a loopback port, exported as
#     CONVEYOR_TEST_RABBITMQ_HTTP=http://127.0.0.1:PORT (same guest account); the run fails when it does not answer.
#     And a Redis Cluster of three masters (redis-server --cluster-enabled yes, joined with redis-cli --cluster
#     create ... --cluster-replicas 0), exported as CONVEYOR_TEST_REDIS_CLUSTER=127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3.
#     Also starts the local AWS emulators from tests/emulators (npm ci from its lock file when needed; Node.js is
#     installed with apt-get when missing): fauxqs for SQS and dynalite for DynamoDB, on loopback, and exports
#     CONVEYOR_TEST_SQS=http://127.0.0.1:PORT and CONVEYOR_TEST_DYNAMODB=http://127.0.0.1:PORT.
#  4. Runs `dotnet test Conveyor.slnx -c Release` with TRX + console loggers.
#  5. Sums the TRX counters and prints one closing line: `tests: N passed, N failed[, N skipped]`.
#  6. Stops both servers on exit (trap), whatever happened.
#
# Environment knobs (all optional):
#   CONVEYOR_TEST_FILTER       passed to `dotnet test --filter`
#   CONVEYOR_TEST_REDIS        host:port of a Redis you run yourself: no Redis is installed/started
#                              (then also set CONVEYOR_TEST_REDIS_TLS, or the TLS tests fail saying so)
#   CONVEYOR_TEST_AMQP         amqp:// URI of a RabbitMQ you run yourself: no RabbitMQ is installed/started
#                              (then also set CONVEYOR_TEST_AMQP_TLS, and CONVEYOR_TEST_RABBITMQ_HTTP to its
#                              management plugin's http://host:port)
#   CONVEYOR_TEST_REDIS_CLUSTER  host:port,... of a Redis Cluster you run yourself: no cluster is started
#   CONVEYOR_TEST_SQS          endpoint of an SQS emulator you run yourself: no fauxqs is started
#   CONVEYOR_TEST_DYNAMODB     endpoint of a DynamoDB emulator you run yourself: no dynalite is started
#   CONVEYOR_TEST_SOLUTION     solution to test (default Conveyor.slnx)
#   CONVEYOR_TEST_RESULTS_DIR  where TRX files go (default artifacts/test-results; emptied first)
#   CONVEYOR_TEST_KEEP_TMP=1   keep the servers' temp dir (data + logs) after the run
# Extra arguments are passed on to `dotnet test`, e.g. scripts/test.sh --no-restore
# shellcheck disable=SC2317  # the stop functions are reached from the EXIT trap
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

SOLUTION="${CONVEYOR_TEST_SOLUTION:-Conveyor.slnx}"
RESULTS_DIR="${CONVEYOR_TEST_RESULTS_DIR:-$ROOT/artifacts/test-results}"
RABBIT_BIN=/usr/lib/rabbitmq/bin   # the real scripts; /usr/sbin/rabbitmq* are wrappers that `su rabbitmq`
CHROMIUM=/usr/bin/chromium         # the path the dashboard's browser tests launch
SERVICE_TIMEOUT_REDIS=30
SERVICE_TIMEOUT_RABBIT=120

WORK_DIR=""
KEEP_TMP="${CONVEYOR_TEST_KEEP_TMP:-0}"
CREATED_POLICY_RC=0
REDIS_PID="" REDIS_PORT="" REDIS_TLS_PORT=""
SENTINEL_PIDS=() SENTINEL_PORTS=() SENTINEL_T0=""
CLUSTER_PIDS=() CLUSTER_PORTS=() CLUSTER_T0=""
RABBIT_TLS_PORT="" RABBIT_HTTP_PORT=""
TLS_DIR=""
RABBIT_PID="" RABBIT_NODE="" RABBIT_PORT="" RABBIT_LOG="" RABBIT_PID_FILE="" RABBIT_T0=""
EPMD_PID=""
FAUXQS_PID="" DYNALITE_PID=""
EMULATORS_DIR="$ROOT/tests/emulators"
SERVICE_TIMEOUT_EMULATOR=30
DOTNET_PID=""
RMQ_ENV=()
TEST_RC=0

log() { printf '[test.sh] %s\n' "$*" >&2; }
die() { printf '[test.sh] ERROR: %s\n' "$*" >&2; exit 1; }
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

# True while PID is a live process (a zombie child that has exited counts as gone).
alive() {
    local pid="$1" state
    [[ -n "$pid" && -r "/proc/$pid/stat" ]] || return 1
    state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# wait_gone PID SECONDS: wait until PID is gone; reap it if it is our child. Returns 1 on timeout.
wait_gone() {
    local pid="$1" deadline=$((SECONDS + $2))
    while alive "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
    wait "$pid" 2>/dev/null || true
    return 0
}

# stop_pid PID NAME GRACE: SIGTERM, wait GRACE seconds, then SIGKILL.
stop_pid() {
    local pid="$1" name="$2" grace="${3:-10}"
    alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$grace"; then
        log "$name (pid $pid) ignored SIGTERM for ${grace}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || log "$name (pid $pid) is still there after SIGKILL"
    fi
}

# free_ports N: N distinct TCP ports, free on all interfaces, below Linux's ephemeral range
# (so no outgoing connection grabs one between the check and the server's bind).
free_ports() {
    local n="$1"
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$n" <<'PY'
import random, socket, sys
n, found = int(sys.argv[1]), []
for port in random.sample(range(20000, 32000), 2000):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("0.0.0.0", port))
    except OSError:
        continue
    finally:
        s.close()
    found.append(port)
    if len(found) == n:
        print(" ".join(map(str, found)))
        sys.exit(0)
sys.exit("no free port found")
PY
    else
        local found=() port
        while ((${#found[@]} < n)); do
            port=$((20000 + RANDOM % 12000))
            [[ " ${found[*]} " == *" $port "* ]] && continue
            # Something answers on it: taken.
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
            found+=("$port")
        done
        echo "${found[*]}"
    fi
}

# ---------------------------------------------------------------------------------------------
# Install
# ---------------------------------------------------------------------------------------------

install_packages() {
    local missing=()
    if [[ -z "${CONVEYOR_TEST_REDIS:-}" || -z "${CONVEYOR_TEST_REDIS_CLUSTER:-}" ]] && ! { command -v redis-server && command -v redis-cli; } >/dev/null 2>&1; then
        missing+=(redis-server)
    fi
    if [[ -z "${CONVEYOR_TEST_AMQP:-}" ]] && [[ ! -x "$RABBIT_BIN/rabbitmq-server" || ! -x "$RABBIT_BIN/rabbitmqctl" ]]; then
        missing+=(rabbitmq-server)
    fi
    if [[ -z "${CONVEYOR_TEST_AMQP:-}" ]] && ! command -v curl >/dev/null 2>&1; then
        missing+=(curl)   # probes the management plugin's HTTP API
    fi
    if [[ -z "${CONVEYOR_TEST_REDIS:-}" || -z "${CONVEYOR_TEST_AMQP:-}" ]] && ! command -v openssl >/dev/null 2>&1; then
        missing+=(openssl)
    fi
    if [[ -z "${CONVEYOR_TEST_SQS:-}" || -z "${CONVEYOR_TEST_DYNAMODB:-}" ]] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
        missing+=(nodejs npm)
    fi
    # The dashboard's browser tests drive Debian's Chromium through Playwright (never Playwright's own download).
    if [[ ! -x "$CHROMIUM" ]]; then
        missing+=(chromium)
    fi
    # A font for the page text in the screenshots the tests write (without recommends, chromium brings none).
    if [[ ! -d /usr/share/fonts/truetype/liberation ]]; then
        missing+=(fonts-liberation)
    fi
    ((${#missing[@]})) || return 0

    log "installing ${missing[*]} (apt-get)..."
    local t0; t0="$(now)"
    # Keep the packages' postinst from starting system-wide services (there is no init system
    # anyway): policy-rc.d exiting 101 makes invoke-rc.d skip the start. Only ours is removed.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod 755 /usr/sbin/policy-rc.d
        CREATED_POLICY_RC=1
    fi
    local apt=(env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get -q -o DPkg::Lock::Timeout=300)
    as_root "${apt[@]}" update </dev/null >&2
    as_root "${apt[@]}" install -y --no-install-recommends "${missing[@]}" </dev/null >&2
    remove_policy_rc
    log "installed ${missing[*]} in $(elapsed "$t0")s"
}

remove_policy_rc() {
    if ((CREATED_POLICY_RC)); then
        as_root rm -f /usr/sbin/policy-rc.d || true
        CREATED_POLICY_RC=0
    fi
}

# ---------------------------------------------------------------------------------------------
# TLS: a throwaway CA and one server certificate for 127.0.0.1 and localhost
# ---------------------------------------------------------------------------------------------

# random_secret: 24 hex characters, for the test accounts' passwords (never printed).
random_secret() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }

make_certificates() {
    TLS_DIR="$WORK_DIR/tls"
    mkdir -p "$TLS_DIR"
    local t0; t0="$(now)"
    # EC keys: quick to make; valid for 2 days (the run only needs minutes).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=Conveyor test CA $$" -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" >/dev/null 2>&1 \
        || die "openssl could not make the test CA"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
        -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" >/dev/null 2>&1 \
        || die "openssl could not make the test server key"
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
        "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$TLS_DIR/server.ext"
    openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" -CAcreateserial \
        -days 2 -extfile "$TLS_DIR/server.ext" -out "$TLS_DIR/server.pem" >/dev/null 2>&1 \
        || die "openssl could not sign the test server certificate"
    chmod 600 "$TLS_DIR/ca.key" "$TLS_DIR/server.key"
    log "made a throwaway CA and server certificate in $(elapsed "$t0")s"
}

# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------

start_redis() {
    local dir="$WORK_DIR/redis" t0
    t0="$(now)"
    mkdir -p "$dir"
    read -r REDIS_PORT REDIS_TLS_PORT < <(free_ports 2) || true
    [[ -n "$REDIS_TLS_PORT" ]] || die "found no free TCP ports for redis"
    # The default user stays open (the plain tests); the TLS tests log in as an ACL user that may touch only
    # keys and channels under conveyor-tls:, and no dangerous command. In a file: no password on a command line.
    local password; password="$(random_secret)"
    (umask 077 && printf '%s\n' "user default on nopass ~* &* +@all" \
        "user conveyor-tls on >$password ~conveyor-tls:* &conveyor-tls:* +@all -@dangerous +info" >"$dir/redis.conf")
    redis-server "$dir/redis.conf" --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$dir" \
        --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$TLS_DIR/server.pem" --tls-key-file "$TLS_DIR/server.key" \
        --tls-ca-cert-file "$TLS_DIR/ca.pem" --tls-auth-clients no \
        --save '' --appendonly no --daemonize no --protected-mode yes \
        --logfile "$dir/redis.log" \
        </dev/null >"$dir/redis.out" 2>&1 &
    REDIS_PID=$!

    local deadline=$((SECONDS + SERVICE_TIMEOUT_REDIS))
    until [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null </dev/null)" == PONG ]]; do
        if ! alive "$REDIS_PID"; then
            KEEP_TMP=1
            tail -n 30 "$dir/redis.log" >&2 || true
            die "redis-server exited during startup; see $dir/redis.log"
        fi
        if ((SECONDS >= deadline)); then
            KEEP_TMP=1
            tail -n 30 "$dir/redis.log" >&2 || true
            die "redis-server did not answer PING on 127.0.0.1:$REDIS_PORT within ${SERVICE_TIMEOUT_REDIS}s; see $dir/redis.log"
        fi
        sleep 0.1
    done
    redis-cli --tls --cacert "$TLS_DIR/ca.pem" -h 127.0.0.1 -p "$REDIS_TLS_PORT" ping </dev/null 2>/dev/null | grep -q PONG \
        || { KEEP_TMP=1; die "redis-server does not answer over TLS on 127.0.0.1:$REDIS_TLS_PORT (built without TLS?); see $dir/redis.log"; }
    export CONVEYOR_TEST_REDIS="127.0.0.1:$REDIS_PORT"
    export CONVEYOR_TEST_REDIS_TLS="rediss://conveyor-tls:$password@127.0.0.1:$REDIS_TLS_PORT?ca=$TLS_DIR/ca.pem"
    log "redis ready on $CONVEYOR_TEST_REDIS and TLS 127.0.0.1:$REDIS_TLS_PORT (pid $REDIS_PID) in $(elapsed "$t0")s"
}

stop_redis() {
    [[ -n "$REDIS_PID" ]] || return 0
    if alive "$REDIS_PID"; then
        timeout 10 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave </dev/null >/dev/null 2>&1 || true
        wait_gone "$REDIS_PID" 10 || stop_pid "$REDIS_PID" redis-server 5
    fi
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=""
}

# ---------------------------------------------------------------------------------------------
# Redis Cluster: three masters (no replicas) on loopback, the 16384 slots split between them
# ---------------------------------------------------------------------------------------------

start_cluster() {
    local dir="$WORK_DIR/cluster" port
    CLUSTER_T0="$(now)"
    mkdir -p "$dir"
    read -r -a CLUSTER_PORTS < <(free_ports 3) || true
    [[ -n "${CLUSTER_PORTS[2]:-}" ]] || die "found no free TCP ports for the redis cluster"
    for port in "${CLUSTER_PORTS[@]}"; do
        mkdir -p "$dir/$port"
        redis-server --bind 127.0.0.1 --port "$port" --dir "$dir/$port" --save '' --appendonly no --daemonize no \
            --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" --cluster-node-timeout 5000 \
            --logfile "$dir/$port/redis.log" </dev/null >/dev/null 2>&1 &
        CLUSTER_PIDS+=($!)
    done
}

# Joins the three into a cluster once they answer, and waits until every node says cluster_state:ok.
wait_for_cluster() {
    local dir="$WORK_DIR/cluster" port nodes=() deadline=$((SECONDS + SERVICE_TIMEOUT_REDIS))
    for port in "${CLUSTER_PORTS[@]}"; do
        nodes+=("127.0.0.1:$port")
        until [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null </dev/null)" == PONG ]]; do
            ((SECONDS < deadline)) || { KEEP_TMP=1; die "cluster node 127.0.0.1:$port did not answer PING within ${SERVICE_TIMEOUT_REDIS}s; see $dir/$port/redis.log"; }
            sleep 0.1
        done
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes </dev/null >"$dir/create.log" 2>&1 \
        || { KEEP_TMP=1; tail -n 20 "$dir/create.log" >&2; die "redis-cli --cluster create failed; see $dir/create.log"; }
    for port in "${CLUSTER_PORTS[@]}"; do
        until redis-cli -h 127.0.0.1 -p "$port" cluster info </dev/null 2>/dev/null | grep -q '^cluster_state:ok'; do
            ((SECONDS < deadline)) || { KEEP_TMP=1; die "redis cluster not in cluster_state:ok on 127.0.0.1:$port within ${SERVICE_TIMEOUT_REDIS}s; see $dir"; }
            sleep 0.2
        done
    done
    export CONVEYOR_TEST_REDIS_CLUSTER="$(IFS=,; echo "${nodes[*]}")"
    log "redis cluster ready on $CONVEYOR_TEST_REDIS_CLUSTER in $(elapsed "$CLUSTER_T0")s"
}

stop_cluster() {
    local pid
    for pid in "${CLUSTER_PIDS[@]}"; do
        stop_pid "$pid" redis-cluster-node 5
    done
    CLUSTER_PIDS=()
}

# ---------------------------------------------------------------------------------------------
# Redis Sentinel: a primary, a replica, three sentinels (quorum 2), all on loopback
# ---------------------------------------------------------------------------------------------

# Launches the five processes; wait_for_sentinel waits for them (the sentinels take seconds to find each other).
start_sentinel() {
    local dir="$WORK_DIR/sentinel" primary replica replica2 s1 s2 s3 port
    SENTINEL_T0="$(now)"
    mkdir -p "$dir"
    read -r primary replica replica2 s1 s2 s3 < <(free_ports 6) || true
    [[ -n "$s3" ]] || die "found no free TCP ports for the sentinel setup"
    redis-server --bind 127.0.0.1 --port "$primary" --dir "$dir" --save '' --appendonly no --daemonize no \
        --logfile "$dir/primary.log" </dev/null >/dev/null 2>&1 &
    SENTINEL_PIDS+=($!)
    redis-server --bind 127.0.0.1 --port "$replica" --dir "$dir" --save '' --appendonly no --daemonize no \
        --replicaof 127.0.0.1 "$primary" --logfile "$dir/replica.log" </dev/null >/dev/null 2>&1 &
    SENTINEL_PIDS+=($!)
    # A second replica, so that the promoted primary still has one and WAIT for 1 replica goes on after a failover.
    redis-server --bind 127.0.0.1 --port "$replica2" --dir "$dir" --save '' --appendonly no --daemonize no \
        --replicaof 127.0.0.1 "$primary" --logfile "$dir/replica2.log" </dev/null >/dev/null 2>&1 &
    SENTINEL_PIDS+=($!)
    for port in "$s1" "$s2" "$s3"; do
        # A sentinel rewrites its own file: one each. Down after 1 s, so the failover test is quick.
        printf '%s\n' "bind 127.0.0.1" "port $port" "dir $dir" "logfile $dir/sentinel-$port.log" \
            "sentinel monitor conveyor 127.0.0.1 $primary 2" "sentinel down-after-milliseconds conveyor 1000" \
            "sentinel failover-timeout conveyor 5000" "sentinel parallel-syncs conveyor 1" >"$dir/sentinel-$port.conf"
        redis-server "$dir/sentinel-$port.conf" --sentinel </dev/null >/dev/null 2>&1 &
        SENTINEL_PIDS+=($!)
    done
    SENTINEL_PORTS=("$primary" "$replica" "$s1" "$s2" "$s3" "$replica2")
}

wait_for_sentinel() {
    local dir="$WORK_DIR/sentinel" primary="${SENTINEL_PORTS[0]}" replica="${SENTINEL_PORTS[1]}"
    local s1="${SENTINEL_PORTS[2]}" s2="${SENTINEL_PORTS[3]}" s3="${SENTINEL_PORTS[4]}"
    local deadline=$((SECONDS + SERVICE_TIMEOUT_REDIS))
    until redis-cli -h 127.0.0.1 -p "$s1" info sentinel </dev/null 2>/dev/null | grep -q "status=ok,address=127.0.0.1:$primary,slaves=2,sentinels=3"; do
        if ((SECONDS >= deadline)); then
            KEEP_TMP=1
            tail -n 10 "$dir"/*.log >&2 || true
            die "the sentinels did not see the primary, its replica and each other within ${SERVICE_TIMEOUT_REDIS}s; see $dir"
        fi
        sleep 0.2
    done
    export CONVEYOR_TEST_SENTINEL="redis+sentinel://127.0.0.1:$s1,127.0.0.1:$s2,127.0.0.1:$s3/conveyor"
    log "redis sentinel ready (primary $primary, replicas $replica ${SENTINEL_PORTS[5]}, sentinels $s1 $s2 $s3) in $(elapsed "$SENTINEL_T0")s"
}

stop_sentinel() {
    local pid
    for pid in "${SENTINEL_PIDS[@]}"; do
        stop_pid "$pid" redis-sentinel-setup 5
    done
    SENTINEL_PIDS=()
}

# ---------------------------------------------------------------------------------------------
# RabbitMQ
# ---------------------------------------------------------------------------------------------

# rabbitmqctl for our node, in our node's environment, never hanging for more than 90 s.
rmqctl() {
    timeout 90 env "${RMQ_ENV[@]}" "$RABBIT_BIN/rabbitmqctl" -n "$RABBIT_NODE" "$@" </dev/null
}

# Launches the node in the background; wait_for_rabbitmq waits for it (Redis starts meanwhile).
start_rabbitmq() {
    local dir="$WORK_DIR/rabbitmq" dist_port epmd_port
    RABBIT_T0="$(now)"
    mkdir -p "$dir/home" "$dir/mnesia" "$dir/log" "$dir/conf.d"
    read -r RABBIT_PORT dist_port epmd_port RABBIT_TLS_PORT RABBIT_HTTP_PORT < <(free_ports 5) || true
    [[ -n "$RABBIT_HTTP_PORT" ]] || die "found no free TCP ports for rabbitmq"
    RABBIT_NODE="conveyor-test-$$@localhost"
    RABBIT_LOG="$dir/log/rabbit.log"
    RABBIT_PID_FILE="$dir/rabbit.pid"

    # A private Erlang cookie: HOME points into the temp dir for the node and for rabbitmqctl,
    # so root's ~/.erlang.cookie and any system node stay untouched.
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$dir/home/.erlang.cookie")
    chmod 400 "$dir/home/.erlang.cookie"
    : >"$dir/rabbitmq-env.conf"          # instead of /etc/rabbitmq/rabbitmq-env.conf
    # The management plugin only: its HTTP API lists what a queue holds (`conveyor tasks` on a RabbitMQ broker).
    echo '[rabbitmq_management].' >"$dir/enabled_plugins"
    cat >"$dir/rabbitmq.conf" <<EOF
# Conveyor test node ($RABBIT_NODE). The listener comes from RABBITMQ_NODE_IP_ADDRESS/PORT.
loopback_users.guest = true
disk_free_limit.absolute = 10MB
log.file.level = info
# TLS, for the amqps:// tests (server authentication only; no client certificates).
listeners.ssl.default = 127.0.0.1:$RABBIT_TLS_PORT
ssl_options.cacertfile = $TLS_DIR/ca.pem
ssl_options.certfile = $TLS_DIR/server.pem
ssl_options.keyfile = $TLS_DIR/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
# The management plugin's HTTP API, on loopback; queue statistics every second instead of every 5 s.
management.tcp.ip = 127.0.0.1
management.tcp.port = $RABBIT_HTTP_PORT
collect_statistics_interval = 1000
EOF

    RMQ_ENV=(
        HOME="$dir/home"
        LC_ALL=C.UTF-8
        ERL_EPMD_ADDRESS=127.0.0.1
        ERL_EPMD_PORT="$epmd_port"
        ERL_CRASH_DUMP="$dir/erl_crash.dump"
        RABBITMQ_NODENAME="$RABBIT_NODE"
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        RABBITMQ_NODE_PORT="$RABBIT_PORT"
        RABBITMQ_DIST_PORT="$dist_port"
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
        RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
        RABBITMQ_CONFIG_FILES="$dir/conf.d"
        RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
        RABBITMQ_MNESIA_BASE="$dir/mnesia"
        RABBITMQ_LOG_BASE="$dir/log"
        RABBITMQ_LOGS="$RABBIT_LOG"
        RABBITMQ_PID_FILE="$RABBIT_PID_FILE"
    )

    # Our own epmd on a private port: it holds only our node, and we know which process to stop.
    env "${RMQ_ENV[@]}" epmd -port "$epmd_port" -address 127.0.0.1 </dev/null >"$dir/log/epmd.log" 2>&1 &
    EPMD_PID=$!

    # The sh wrapper stays in front of beam.smp and turns SIGTERM into a clean node stop.
    env "${RMQ_ENV[@]}" "$RABBIT_BIN/rabbitmq-server" </dev/null >"$dir/log/startup.log" 2>&1 &
    RABBIT_PID=$!
    log "rabbitmq node $RABBIT_NODE starting (amqp 127.0.0.1:$RABBIT_PORT, amqps $RABBIT_TLS_PORT, dist $dist_port, epmd $epmd_port)"
}

# Prints what is most likely the cause of a failed start: the first errors, then the last lines.
show_rabbit_logs() {
    local f
    for f in "$WORK_DIR/rabbitmq/log/startup.log" "$RABBIT_LOG"; do
        [[ -s "$f" ]] || continue
        printf -- '----- %s: first errors\n' "$f" >&2
        grep -m 15 -F '[error]' "$f" >&2 || true
        printf -- '----- %s: last lines\n' "$f" >&2
        tail -n 15 "$f" >&2 || true
    done
}

wait_for_rabbitmq() {
    local deadline=$((SECONDS + SERVICE_TIMEOUT_RABBIT)) out=""
    while :; do
        if ! alive "$RABBIT_PID"; then
            KEEP_TMP=1
            show_rabbit_logs
            die "rabbitmq-server exited during startup; see $WORK_DIR/rabbitmq/log/startup.log (and rabbit.log beside it)"
        fi
        # Fails at once while the node is not up; then waits (bounded) for the app to boot.
        if out="$(rmqctl -q await_startup --timeout 30 2>&1)"; then
            break
        fi
        if ((SECONDS >= deadline)); then
            KEEP_TMP=1
            printf 'last rabbitmqctl await_startup output:\n%s\n' "$out" >&2
            show_rabbit_logs
            die "rabbitmq node $RABBIT_NODE not up within ${SERVICE_TIMEOUT_RABBIT}s; see $RABBIT_LOG and $WORK_DIR/rabbitmq/log/startup.log"
        fi
        sleep 1
    done
    # The AMQP listener itself must answer too.
    (exec 3<>"/dev/tcp/127.0.0.1/$RABBIT_PORT") 2>/dev/null \
        || { KEEP_TMP=1; die "rabbitmq node is up but nothing listens on 127.0.0.1:$RABBIT_PORT; see $RABBIT_LOG"; }
    (exec 3<>"/dev/tcp/127.0.0.1/$RABBIT_TLS_PORT") 2>/dev/null \
        || { KEEP_TMP=1; die "rabbitmq node is up but its TLS listener does not answer on 127.0.0.1:$RABBIT_TLS_PORT; see $RABBIT_LOG"; }
    # A user allowed on one vhost only (the TLS tests'); guest stays for the plain tests. The password goes
    # through stdin, never onto a command line.
    local password; password="$(random_secret)"
    rmqctl -q add_vhost conveyor-tls >/dev/null || die "rabbitmqctl add_vhost failed"
    printf '%s\n' "$password" | timeout 90 env "${RMQ_ENV[@]}" "$RABBIT_BIN/rabbitmqctl" -n "$RABBIT_NODE" -q add_user conveyor-tls >/dev/null \
        || die "rabbitmqctl add_user failed"
    rmqctl -q set_permissions -p conveyor-tls conveyor-tls '.*' '.*' '.*' >/dev/null || die "rabbitmqctl set_permissions failed"
    # The management plugin's HTTP API must answer too (a missing plugin fails here, not as skipped tests).
    local http_deadline=$((SECONDS + 60))
    until curl -fsS -o /dev/null -u guest:guest "http://127.0.0.1:$RABBIT_HTTP_PORT/api/overview" </dev/null 2>/dev/null; do
        if ((SECONDS >= http_deadline)); then
            KEEP_TMP=1
            show_rabbit_logs
            die "the rabbitmq_management plugin's HTTP API does not answer on 127.0.0.1:$RABBIT_HTTP_PORT; see $RABBIT_LOG"
        fi
        sleep 0.5
    done
    export CONVEYOR_TEST_AMQP="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/"
    export CONVEYOR_TEST_RABBITMQ_HTTP="http://127.0.0.1:$RABBIT_HTTP_PORT"
    export CONVEYOR_TEST_AMQP_TLS="amqps://conveyor-tls:$password@127.0.0.1:$RABBIT_TLS_PORT/conveyor-tls?ca=$TLS_DIR/ca.pem"
    log "rabbitmq ready on 127.0.0.1:$RABBIT_PORT, HTTP API $CONVEYOR_TEST_RABBITMQ_HTTP (pid $RABBIT_PID) in $(elapsed "$RABBIT_T0")s"
}

stop_rabbitmq() {
    if [[ -n "$RABBIT_PID" ]]; then
        local beam=""
        [[ -r "$RABBIT_PID_FILE" ]] && beam="$(tr -dc 0-9 <"$RABBIT_PID_FILE")"
        if alive "$RABBIT_PID"; then
            rmqctl -q stop >/dev/null 2>&1 || true
            wait_gone "$RABBIT_PID" 20 || stop_pid "$RABBIT_PID" rabbitmq-server 20
        fi
        wait "$RABBIT_PID" 2>/dev/null || true
        # If the wrapper went away but beam.smp (its child, pid from the pid file) did not.
        if [[ -n "$beam" ]] && alive "$beam" && grep -qa -- "$RABBIT_NODE" "/proc/$beam/cmdline" 2>/dev/null; then
            stop_pid "$beam" beam.smp 10
        fi
        RABBIT_PID=""
    fi
    if [[ -n "$EPMD_PID" ]]; then
        stop_pid "$EPMD_PID" epmd 5
        EPMD_PID=""
    fi
}

# ---------------------------------------------------------------------------------------------
# AWS emulators (fauxqs for SQS, dynalite for DynamoDB), from tests/emulators' lock file
# ---------------------------------------------------------------------------------------------

install_emulators() {
    command -v node >/dev/null 2>&1 || die "node is not on PATH: the SQS and DynamoDB tests need Node.js 20+ (apt-get install nodejs npm)"
    local stamp="$EMULATORS_DIR/node_modules/.package-lock.json"
    if [[ -f "$stamp" && ! "$EMULATORS_DIR/package-lock.json" -nt "$stamp" \
          && -f "$EMULATORS_DIR/node_modules/fauxqs/package.json" && -f "$EMULATORS_DIR/node_modules/dynalite/cli.js" ]]; then
        return 0
    fi
    log "installing the AWS emulators (npm ci in tests/emulators)..."
    local t0; t0="$(now)"
    (cd "$EMULATORS_DIR" && npm ci --no-audit --no-fund --loglevel=error </dev/null >&2) \
        || die "npm ci failed in $EMULATORS_DIR (the emulators come from the npm registry)"
    log "installed the AWS emulators in $(elapsed "$t0")s"
}

# wait_http NAME PID URL TARGET LOG: until a POST of {} with X-Amz-Target TARGET gets a 200.
wait_http() {
    local name="$1" pid="$2" url="$3" target="$4" logfile="$5" deadline=$((SECONDS + SERVICE_TIMEOUT_EMULATOR))
    # shellcheck disable=SC2016
    local probe='fetch(process.argv[1], { method: "POST", body: "{}", headers: { "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": process.argv[2],
        "Authorization": "AWS4-HMAC-SHA256 Credential=conveyor/20260101/us-east-1/x/aws4_request, SignedHeaders=host, Signature=0", "X-Amz-Date": "20260101T000000Z" } })
        .then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))'
    until node -e "$probe" "$url" "$target" </dev/null >/dev/null 2>&1; do
        if ! alive "$pid"; then
            KEEP_TMP=1
            tail -n 30 "$logfile" >&2 || true
            die "$name exited during startup; see $logfile"
        fi
        if ((SECONDS >= deadline)); then
            KEEP_TMP=1
            tail -n 30 "$logfile" >&2 || true
            die "$name did not answer on $url within ${SERVICE_TIMEOUT_EMULATOR}s; see $logfile"
        fi
        sleep 0.2
    done
}

start_emulators() {
    local need_sqs=0 need_dynamo=0 dir="$WORK_DIR/emulators" t0 sqs_port dynamo_port
    [[ -z "${CONVEYOR_TEST_SQS:-}" ]] && need_sqs=1
    [[ -z "${CONVEYOR_TEST_DYNAMODB:-}" ]] && need_dynamo=1
    ((need_sqs)) || log "using the caller's SQS endpoint at $CONVEYOR_TEST_SQS"
    ((need_dynamo)) || log "using the caller's DynamoDB endpoint at $CONVEYOR_TEST_DYNAMODB"
    ((need_sqs || need_dynamo)) || return 0
    install_emulators
    t0="$(now)"
    mkdir -p "$dir"
    read -r sqs_port dynamo_port < <(free_ports 2) || true
    [[ -n "$dynamo_port" ]] || die "found no free TCP ports for the AWS emulators"
    if ((need_sqs)); then
        FAUXQS_PORT="$sqs_port" node "$EMULATORS_DIR/fauxqs.mjs" </dev/null >"$dir/fauxqs.log" 2>&1 &
        FAUXQS_PID=$!
    fi
    if ((need_dynamo)); then
        node "$EMULATORS_DIR/node_modules/dynalite/cli.js" --host 127.0.0.1 --port "$dynamo_port" \
            --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 </dev/null >"$dir/dynalite.log" 2>&1 &
        DYNALITE_PID=$!
    fi
    if ((need_sqs)); then
        wait_http fauxqs "$FAUXQS_PID" "http://127.0.0.1:$sqs_port/" AmazonSQS.ListQueues "$dir/fauxqs.log"
        export CONVEYOR_TEST_SQS="http://127.0.0.1:$sqs_port"
        log "fauxqs (SQS) ready on $CONVEYOR_TEST_SQS (pid $FAUXQS_PID)"
    fi
    if ((need_dynamo)); then
        wait_http dynalite "$DYNALITE_PID" "http://127.0.0.1:$dynamo_port/" DynamoDB_20120810.ListTables "$dir/dynalite.log"
        export CONVEYOR_TEST_DYNAMODB="http://127.0.0.1:$dynamo_port"
        log "dynalite (DynamoDB) ready on $CONVEYOR_TEST_DYNAMODB (pid $DYNALITE_PID)"
    fi
    log "AWS emulators ready in $(elapsed "$t0")s"
}

stop_emulators() {
    if [[ -n "$FAUXQS_PID" ]]; then stop_pid "$FAUXQS_PID" fauxqs 5; FAUXQS_PID=""; fi
    if [[ -n "$DYNALITE_PID" ]]; then stop_pid "$DYNALITE_PID" dynalite 5; DYNALITE_PID=""; fi
}

# ---------------------------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------------------------

# stop_tree PID NAME: SIGTERM to PID and all its descendants, SIGKILL to what is left after 10 s.
stop_tree() {
    local root="$1" name="$2" pids=() queue=("$1") p kids
    while ((${#queue[@]})); do
        p="${queue[0]}"; queue=("${queue[@]:1}")
        pids+=("$p")
        kids="$(ps -o pid= --ppid "$p" 2>/dev/null || true)"
        for p in $kids; do queue+=("$p"); done
    done
    log "stopping $name (pid $root and ${#pids[@]} process(es) in all)"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    for p in "${pids[@]}"; do
        while alive "$p" && ((SECONDS < deadline)); do sleep 0.2; done
        alive "$p" && kill -KILL "$p" 2>/dev/null
    done
    wait "$root" 2>/dev/null || true
}

stop_services() {
    [[ -n "$REDIS_PID$RABBIT_PID$EPMD_PID$FAUXQS_PID$DYNALITE_PID${SENTINEL_PIDS[*]}${CLUSTER_PIDS[*]}" ]] || return 0
    local t0; t0="$(now)"
    stop_redis || true
    stop_sentinel || true
    stop_cluster || true
    stop_rabbitmq || true
    stop_emulators || true
    log "services stopped in $(elapsed "$t0")s"
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    remove_policy_rc
    if [[ -n "$DOTNET_PID" ]] && alive "$DOTNET_PID"; then
        stop_tree "$DOTNET_PID" "dotnet test"
    fi
    stop_services
    if [[ -n "$WORK_DIR" && -d "$WORK_DIR" ]]; then
        if [[ "$KEEP_TMP" == 1 ]]; then
            log "kept the servers' files in $WORK_DIR"
        else
            rm -rf "$WORK_DIR"
        fi
    fi
    exit "$rc"
}

start_services() {
    local need_redis=0 need_rabbit=0 need_aws=0 need_cluster=0
    [[ -z "${CONVEYOR_TEST_REDIS:-}" ]] && need_redis=1
    [[ -z "${CONVEYOR_TEST_REDIS_CLUSTER:-}" ]] && need_cluster=1
    [[ -z "${CONVEYOR_TEST_AMQP:-}" ]] && need_rabbit=1
    [[ -z "${CONVEYOR_TEST_SQS:-}" || -z "${CONVEYOR_TEST_DYNAMODB:-}" ]] && need_aws=1
    ((need_redis)) || log "using the caller's Redis at $CONVEYOR_TEST_REDIS"
    ((need_rabbit)) || log "using the caller's RabbitMQ at $CONVEYOR_TEST_AMQP"
    ((need_cluster)) || log "using the caller's Redis Cluster at $CONVEYOR_TEST_REDIS_CLUSTER"
    # Before the early return: Chromium is needed even when every server is the caller's.
    install_packages
    ((need_redis || need_rabbit || need_aws || need_cluster)) || return 0

    WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/conveyor-test.XXXXXX")"
    if ((need_redis || need_rabbit)); then make_certificates; fi
    ((need_rabbit)) && start_rabbitmq
    ((need_redis)) && start_redis
    if ((need_redis)) && [[ -z "${CONVEYOR_TEST_SENTINEL:-}" ]]; then start_sentinel; fi
    ((need_cluster)) && start_cluster
    ((need_aws)) && start_emulators
    ((need_rabbit)) && wait_for_rabbitmq
    if ((${#SENTINEL_PORTS[@]})); then wait_for_sentinel; fi
    if ((${#CLUSTER_PORTS[@]})); then wait_for_cluster; fi
    return 0
}

run_tests() {
    command -v dotnet >/dev/null 2>&1 || die "dotnet is not on PATH"
    [[ "$RESULTS_DIR" != / && "$RESULTS_DIR" != "$ROOT" ]] || die "refusing to empty $RESULTS_DIR"
    rm -rf "$RESULTS_DIR"
    mkdir -p "$RESULTS_DIR"
    export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

    # One TRX per test project: a fixed LogFileName would be overwritten by each project in
    # turn, LogFilePrefix gives every project its own results_<tfm>_<timestamp>.trx.
    local args=(test "$SOLUTION" -c Release
        --results-directory "$RESULTS_DIR"
        --logger "trx;LogFilePrefix=results"
        --logger "console;verbosity=normal")
    [[ -n "${CONVEYOR_TEST_FILTER:-}" ]] && args+=(--filter "$CONVEYOR_TEST_FILTER")

    log "dotnet ${args[*]} $*"
    # In the background + wait, so that INT/TERM reach our trap at once (which then stops it).
    dotnet "${args[@]}" "$@" </dev/null &
    DOTNET_PID=$!
    set +e
    wait "$DOTNET_PID"
    TEST_RC=$?
    set -e
    DOTNET_PID=""
    log "dotnet test exited with $TEST_RC"
}

# Sums the <Counters .../> of every TRX file and prints the closing line.
# Returns 0 when tests ran and none failed, 1 otherwise.
summarize() {
    local -A sum=([total]=0 [executed]=0 [passed]=0 [failed]=0 [error]=0 [timeout]=0 [aborted]=0)
    local files=0 f counters key value
    while IFS= read -r -d '' f; do
        counters="$(grep -o '<Counters [^>]*>' "$f" | head -n 1)" || continue
        files=$((files + 1))
        for key in "${!sum[@]}"; do
            value="$(sed -n "s/.*[[:space:]]$key=\"\([0-9]*\)\".*/\1/p" <<<"$counters")"
            sum[$key]=$((sum[$key] + ${value:-0}))
        done
    done < <(find "$RESULTS_DIR" -name '*.trx' -type f -print0 2>/dev/null)

    local passed=${sum[passed]}
    local failed=$((sum[failed] + sum[error] + sum[timeout] + sum[aborted]))
    local skipped=$((sum[total] - sum[executed]))
    ((skipped < 0)) && skipped=0
    local line="tests: $passed passed, $failed failed"
    ((skipped > 0)) && line+=", $skipped skipped"

    log "read $files TRX file(s) from $RESULTS_DIR"
    echo "$line"
    if ((sum[executed] == 0)); then
        log "no test was executed"
        return 1
    fi
    ((failed == 0))
}

main() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    start_services
    run_tests "$@"
    local summary_ok=0
    summarize || summary_ok=1
    if ((TEST_RC != 0)); then
        exit "$TEST_RC"
    fi
    exit "$summary_ok"
}

main "$@"
