#!/usr/bin/env bash
# bench/run.sh: the benchmark of DESIGN.md §10, run by `make bench` (see bench/README.md).
#
# Starts its own redis-server and `crm dev` on free loopback ports, warms up, then in one run, at
# the same concurrency and for the same duration each:
#   (a) gRPC grpc.health.v1.Health/Check with ghz           (the no-op baseline)
#   (b) gRPC MarketingService/CaptureLead with ghz          (a new lead per call)
#   (c) REST POST /v1/leads through the gateway with wrk    (a new lead per call)
#   (d) CaptureLead with ghz at a fixed rate of half of (b)  (p99 at half saturation)
#   (e) CaptureLead with ghz re-capturing 50 known leads     (the upsert path; BENCH_REPEAT=0 skips)
# then (f) the event bus with bench/bus (.bin/busbench) against a second redis-server of its own:
# events/s one consumer drains (exactly-once effect, and no-op), and the lag from commit to
# reaction at a fixed rate (BENCH_BUS=0 skips it),
# and samples Redis: memory per lead over (b), script calls per lead over (b), and the top-level
# commands per call (MONITOR over a short sequential run). bench/report.py prints the table and the
# ratios with PASS/MISS; a MISS does not fail the run, an error (server down, >1% errors) does.
#
# Environment: BENCH_DURATION (default 10s), BENCH_CONCURRENCY (50), BENCH_WARMUP (3s),
# BENCH_REPEAT (1), BENCH_MONITOR_CALLS (200), BENCH_QUIET_WAIT (60), BENCH_NOISY_RETRIES (2),
# BENCH_NO_BUILD (0; 1 uses .bin/crm and .bin/busbench as they are), BENCH_REST_TOOL (wrk; httpload
# for the fallback), BENCH_BUS (1), BENCH_BUS_RATE (5000 events/s, the target's rate), BENCH_BUS_EVENTS (20000),
# BENCH_BUS_TUNED_BLOCK (unset; e.g. 50ms also measures the lag with that ConsumerConfig.Block),
# BENCH_LISTS (1; 0 skips the list, lookup, search and export runs), BENCH_LISTS_MAX (1000000),
# BENCH_LISTS_DURATION (5s), BENCH_EXPORT_MAX (100000: the largest tenant exported),
# BENCH_TRACED (1; 0 skips the 10 % sampling run), BENCH_CASES (unset: every bench/cases/*.sh;
# e.g. "value" runs only bench/cases/value.sh), BENCH_FORCE_RETRY (0; 1 measures every run twice and
# keeps the second, see measure_quiet).
# Results also go to bench/results/latest.txt, the raw reports to bench/results/raw/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.bin"
BENCH="$ROOT/bench"

secs() { local v="$1"; [[ "$v" =~ ^[0-9]+$ ]] && v="${v}s"; printf '%s' "$v"; }
DURATION="$(secs "${BENCH_DURATION:-10s}")"
WARMUP="$(secs "${BENCH_WARMUP:-3s}")"
CONC="${BENCH_CONCURRENCY:-50}"
REPEAT="${BENCH_REPEAT:-1}"
MONITOR_CALLS="${BENCH_MONITOR_CALLS:-200}"
BUS="${BENCH_BUS:-1}"
BUS_RATE="${BENCH_BUS_RATE:-5000}"
BUS_EVENTS="${BENCH_BUS_EVENTS:-20000}"
BUS_TUNED_BLOCK="${BENCH_BUS_TUNED_BLOCK:-0}"
LISTS="${BENCH_LISTS:-1}"
LISTS_MAX="${BENCH_LISTS_MAX:-1000000}"
LISTS_DURATION="$(secs "${BENCH_LISTS_DURATION:-5s}")"
TRACED="${BENCH_TRACED:-1}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/crm-bench.XXXXXX")"
REDIS_PID="" CRM_PID="" MONITOR_PID="" LOAD_PID="" BUS_REDIS_PID="" SINK_PID=""
KEEP_WORK=0

log() { printf '==> %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  if [[ -s "$WORK/crm.log" ]]; then
    log "last lines of the crm log ($WORK/crm.log):"
    tail -n 30 "$WORK/crm.log" >&2
  fi
  KEEP_WORK=1
  exit 1
}

stop_pid() { # stop_pid PID: SIGTERM, wait up to 10s, then SIGKILL; only processes this script started
  local pid="$1"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  stop_pid "$LOAD_PID"
  stop_pid "$MONITOR_PID"
  stop_pid "$CRM_PID"
  stop_pid "$REDIS_PID"
  stop_pid "$BUS_REDIS_PID"
  stop_pid "$SINK_PID"
  if [[ $rc -ne 0 || $KEEP_WORK -eq 1 ]]; then
    log "raw results and logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------- tools
cd "$ROOT"
command -v redis-server >/dev/null || die "redis-server is not installed (Debian package redis-server)"
command -v redis-cli >/dev/null || die "redis-cli is not installed (Debian package redis-tools)"
command -v python3 >/dev/null || die "python3 is needed for bench/report.py"
command -v curl >/dev/null || die "curl is needed"

if [[ "${BENCH_NO_BUILD:-0}" == 1 && -x "$BIN/crm" ]]; then
  log "using the existing .bin/crm (BENCH_NO_BUILD=1)"
else
  log "building .bin/crm"
  go build -o "$BIN/crm" ./cmd/crm || die "go build ./cmd/crm failed"
fi

if [[ ! -x "$BIN/grpcurl" ]]; then
  log "building .bin/grpcurl (tools/go.mod)"
  (cd tools && GOWORK=off go build -o "$BIN/" github.com/fullstorydev/grpcurl/cmd/grpcurl) ||
    die "could not build grpcurl"
fi

# bench/bus is a module of its own too (not in go.work), built against the tree's pkg/ and proto/.
if [[ "$BUS" != 0 ]]; then
  if [[ "${BENCH_NO_BUILD:-0}" == 1 && -x "$BIN/busbench" ]]; then
    log "using the existing .bin/busbench (BENCH_NO_BUILD=1)"
  else
    log "building .bin/busbench (bench/bus/go.mod)"
    (cd bench/bus && GOWORK=off go build -o ../../.bin/busbench .) || die "could not build bench/bus"
  fi
fi

if [[ "$LISTS" != 0 ]]; then
  if [[ "${BENCH_NO_BUILD:-0}" == 1 && -x "$BIN/listsfill" ]]; then
    log "using the existing .bin/listsfill (BENCH_NO_BUILD=1)"
  else
    log "building .bin/listsfill (bench/lists/go.mod)"
    (cd bench/lists && GOWORK=off go build -o ../../.bin/listsfill .) || die "could not build bench/lists"
  fi
fi

# bench/value (the value case's seeder) is a module of its own, built against the tree's services.
if [[ "${BENCH_VALUE:-1}" != 0 ]]; then
  if [[ "${BENCH_NO_BUILD:-0}" == 1 && -x "$BIN/valueseed" ]]; then
    log "using the existing .bin/valueseed (BENCH_NO_BUILD=1)"
  else
    log "building .bin/valueseed (bench/value/go.mod)"
    (cd bench/value && GOWORK=off go build -o ../../.bin/valueseed .) || die "could not build bench/value"
  fi
fi

# ghz is its own tool module: its last release needs an older grpc than tools/go.mod pins.
if [[ ! -x "$BIN/ghz" || tools/ghz/go.mod -nt "$BIN/ghz" || tools/ghz/go.sum -nt "$BIN/ghz" ]]; then
  log "building .bin/ghz (tools/ghz/go.mod)"
  (cd tools/ghz && GOWORK=off go build -o ../../.bin/ghz github.com/bojand/ghz/cmd/ghz) ||
    die "could not build ghz"
fi
GHZ="$BIN/ghz"

REST_TOOL="${BENCH_REST_TOOL:-wrk}" # BENCH_REST_TOOL=httpload forces the fallback
if [[ "$REST_TOOL" == wrk ]] && ! command -v wrk >/dev/null; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "installing wrk (Debian package)"
    { apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }; } >"$WORK/apt.log" 2>&1 || true
  fi
  if ! command -v wrk >/dev/null; then
    log "wrk is not available: using the Go fallback bench/httpload"
    REST_TOOL=httpload
  fi
fi
if [[ "$REST_TOOL" == httpload ]]; then
  (cd bench/httpload && GOWORK=off go build -o "$BIN/httpload" .) || die "could not build bench/httpload"
fi

# ------------------------------------------------------------------------------------ processes
USED_PORTS=" "
free_port() { # free_port VAR: sets VAR to a free loopback port below the ephemeral range
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    [[ "$USED_PORTS" == *" $p "* ]] && continue
    if command -v ss >/dev/null; then
      [[ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]] && continue
    elif (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      continue
    fi
    USED_PORTS+="$p "
    printf -v "$1" '%s' "$p"
    return 0
  done
  die "no free port found"
}
free_port REDIS_PORT
free_port GRPC_PORT
free_port HTTP_PORT
free_port ADMIN_PORT
GRPC_ADDR="127.0.0.1:$GRPC_PORT"
HTTP_URL="http://127.0.0.1:$HTTP_PORT"
RCLI=(redis-cli -h 127.0.0.1 -p "$REDIS_PORT")

log "starting redis-server on 127.0.0.1:$REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  --dir "$WORK" --logfile "$WORK/redis.log" >"$WORK/redis.out" 2>&1 &
REDIS_PID=$!
for i in $(seq 1 100); do
  [[ "$("${RCLI[@]}" ping 2>/dev/null)" == PONG ]] && break
  kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited: $(tail -q -n 5 "$WORK/redis.out" "$WORK/redis.log" 2>/dev/null)"
  [[ $i == 100 ]] && die "redis-server did not answer PING within 10s"
  sleep 0.1
done

API_KEY="bench_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
start_crm() { # start_crm [VAR=value...]: crm dev on this run's ports and Redis, with extra environment
  log "starting crm dev (gRPC $GRPC_ADDR, REST $HTTP_URL, admin 127.0.0.1:$ADMIN_PORT) $*"
  # One API key drives the whole load (--dev-key registers CRM_DEV_API_KEY on this real Redis): the
  # per-key limit is set out of reach, so the limiter still runs (and costs what it costs) but
  # never refuses.
  env "$@" CRM_DEV_API_KEY="$API_KEY" "$BIN/crm" dev --dev-key \
    --grpc-addr "$GRPC_ADDR" --http-addr "127.0.0.1:$HTTP_PORT" --admin-addr "127.0.0.1:$ADMIN_PORT" \
    --redis-url "redis://127.0.0.1:$REDIS_PORT" --shutdown-timeout 5s \
    --rate-limit 100000000 --rate-burst 100000000 >>"$WORK/crm.log" 2>&1 &
  CRM_PID=$!
  for i in $(seq 1 300); do
    kill -0 "$CRM_PID" 2>/dev/null || die "crm dev exited during start-up"
    if curl -fsS -o /dev/null "$HTTP_URL/healthz" 2>/dev/null &&
      "$BIN/grpcurl" -plaintext -max-time 1 "$GRPC_ADDR" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING; then
      break
    fi
    [[ $i == 300 ]] && die "crm dev not ready (GET /healthz and gRPC health) within 30s"
    sleep 0.1
  done
}
start_crm
log "crm dev is ready"

# ------------------------------------------------------------------------------------- helpers
CLK_TCK="$(getconf CLK_TCK)"
machine_secs() { # machine_secs: busy CPU seconds of the whole machine so far (all cores, /proc/stat)
  awk -v hz="$CLK_TCK" '$1 == "cpu" { printf "%.3f", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}
children_secs() { # children_secs: sets CHILD_SECS, CPU seconds of this shell's waited-for children
  # `times` must run in this shell, not in a $(...) subshell, whose children are not this shell's.
  times >"$WORK/times"
  CHILD_SECS="$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); t += p[1] * 60 + p[2] }
    printf "%.3f", t }' "$WORK/times")"
}
cpu_secs() { # cpu_secs PID: user+system CPU seconds of a process so far
  awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / hz }' "/proc/$1/stat"
}
# measure NAME CMD...: runs a load generator, recording CPU seconds of crm, redis and the client.
STREAMS=() # every service's partition streams, listed once the warm-up wrote to them (see below)
BACKLOG_SKIP="" # a consumer group left out of backlog (one whose service crm dev does not run)
backlog() { # backlog: entries of the streams that a consumer group has not acknowledged or read yet
  ((${#STREAMS[@]})) || { echo 0; return; }
  printf 'XINFO GROUPS %s\n' "${STREAMS[@]}" | "${RCLI[@]}" 2>/dev/null |
    awk -v skip="$BACKLOG_SKIP" 'prev == "name" { group = $1 }
      (prev == "pending" || prev == "lag") && group != skip { n += $1 } { prev = $1 } END { print n + 0 }'
}
drained() { # drained TRIES: wait (TRIES x 0.1 s at most) until no consumer group has a backlog
  local i
  for i in $(seq 1 "$1"); do
    [[ "$(backlog)" == 0 ]] && return 0
    sleep 0.1
  done
  return 1
}
measure() {
  local name="$1"; shift
  local crm0 redis0 crm1 redis1 t0 t1 m0 m1 c0 c1
  kill -0 "$CRM_PID" 2>/dev/null || die "crm dev is no longer running (before $name)"
  go_metrics >"$WORK/$name.go0"
  crm0="$(cpu_secs "$CRM_PID")"; redis0="$(cpu_secs "$REDIS_PID")"; m0="$(machine_secs)"
  children_secs; c0="$CHILD_SECS"; t0="$(date +%s.%N)"
  # In the background, so that a signal to this script is handled at once, not after the run.
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  LOAD_PID=$!
  wait "$LOAD_PID" || die "$name: load generator failed: $(tail -n 5 "$WORK/$name.err")"
  LOAD_PID=""
  children_secs; c1="$CHILD_SECS"
  # The consumers' reactions to the run's events belong to its cost (DESIGN §10: Redis CPU per
  # write, consumers' work included): wait until they caught up, at most 20 s, before the samples.
  drained 200 || log "    $name: the consumers are still $(backlog) entries behind after 20 s"
  t1="$(date +%s.%N)"
  kill -0 "$CRM_PID" 2>/dev/null || die "crm dev died during $name"
  crm1="$(cpu_secs "$CRM_PID")"; redis1="$(cpu_secs "$REDIS_PID")"; m1="$(machine_secs)"
  awk -v a="$crm0" -v b="$crm1" -v c="$redis0" -v d="$redis1" -v c0="$c0" -v c1="$c1" -v w0="$t0" -v w1="$t1" \
    -v m0="$m0" -v m1="$m1" \
    'BEGIN { printf "crm=%.3f\nredis=%.3f\nclient=%.3f\nwall=%.3f\nmachine=%.3f\n", b-a, d-c, c1-c0, w1-w0, m1-m0 }' >"$WORK/$name.cpu"
  go_metrics >"$WORK/$name.go1"
  # crm's Go runtime over the run, from its /metrics: bytes and objects allocated, GC cycles.
  awk 'NR == FNR { v[$1] = $2; next } { printf "go_%s=%.0f\n", $1, $2 - v[$1] }' \
    "$WORK/$name.go0" "$WORK/$name.go1" >>"$WORK/$name.cpu"
}
request_trips() { # request_trips METHOD: crm's count of the round trips to Redis METHOD's calls made
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null | awk -v m="rpc_method=\"$1\"" '
    $1 ~ /^crm_redis_request_round_trips_total\{/ && index($1, m) { n += $2 } END { printf "%d\n", n }'
}
go_metrics() { # the Go runtime counters of crm, as "name value" lines
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null | awk '
    $1 == "go_memstats_alloc_bytes_total" { print "alloc_bytes", $2 + 0 }
    $1 == "go_memstats_mallocs_total" { print "mallocs", $2 + 0 }
    $1 == "go_gc_duration_seconds_count" { print "gc_cycles", $2 + 0 }'
}
# measure_quiet [--prepare FN] NAME CMD...: wait until the machine is quiet (BENCH_QUIET_WAIT seconds
# of waiting in all, default 60), measure, and when other work on the machine took more than 10% of
# it during the run, measure again (BENCH_NOISY_RETRIES times in all, default 2) and keep the quieter
# run. A re-run repeats the same command, so a command that uses up its data (leads only one
# conversion may take, lines a deal holds at most 100 of) names FN: it runs before every
# measurement, first or again, with the attempt (0, 1, ...), in this shell and outside the measured
# window, and makes the data fresh; the consumers' reactions to what it wrote are waited for.
# BENCH_FORCE_RETRY=1 measures every run once more whatever the noise (not counted in
# BENCH_NOISY_RETRIES) and keeps that re-run: a check that every run can be repeated.
NOISY_RETRIES="${BENCH_NOISY_RETRIES:-2}"
other_share() { # other_share FILE.cpu: % of all cores busy with anything but crm, redis, the client
  awk -F= -v cpus="$(nproc)" '{ v[$1] = $2 }
    END { o = v["machine"] - v["crm"] - v["redis"] - v["client"]; if (o < 0) o = 0
          printf "%.0f", 100 * o / (v["wall"] * cpus) }' "$1"
}
QUIET_WAIT="${BENCH_QUIET_WAIT:-60}"
wait_quiet() { # before a run, wait (QUIET_WAIT seconds in all, at most) while other work is busy
  local t0 t1 i0 i1 busy
  while ((QUIET_WAIT > 0)); do
    read -r t0 i0 < <(awk '$1 == "cpu" { print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6; exit }' /proc/stat)
    sleep 1
    read -r t1 i1 < <(awk '$1 == "cpu" { print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6; exit }' /proc/stat)
    busy=$(((100 * ((t1 - t0) - (i1 - i0))) / ((t1 - t0) > 0 ? (t1 - t0) : 1)))
    ((busy <= 10)) && return 0
    QUIET_WAIT=$((QUIET_WAIT - 1))
    log "    the machine is ${busy}% busy with other work: waiting (${QUIET_WAIT}s of waiting left)"
  done
}
FORCE_RETRY="${BENCH_FORCE_RETRY:-0}"
measure_quiet() {
  local prepare=""
  [[ "$1" == --prepare ]] && { prepare="$2"; shift 2; }
  local name="$1"; shift
  local other again ext attempt=0 forced="$FORCE_RETRY" keep
  prepare_run "$prepare" 0
  wait_quiet
  measure "$name" "$@"
  other="$(other_share "$WORK/$name.cpu")"
  while ((forced == 1 || (other > 10 && NOISY_RETRIES > 0))); do
    attempt=$((attempt + 1))
    if ((forced == 1)); then
      log "    BENCH_FORCE_RETRY=1: measuring $name again, the re-run is kept"
    else
      NOISY_RETRIES=$((NOISY_RETRIES - 1))
      log "    other work took ${other}% of the machine during $name: measuring it again"
    fi
    prepare_run "$prepare" "$attempt"
    wait_quiet
    measure "$name.again" "$@"
    again="$(other_share "$WORK/$name.again.cpu")"
    keep=$((forced == 1 || again < other))
    forced=0
    if ((keep)); then
      for ext in out err cpu go0 go1; do mv "$WORK/$name.again.$ext" "$WORK/$name.$ext"; done
      other="$again"
    fi
  done
}
prepare_run() { # prepare_run FN ATTEMPT: FN ATTEMPT (if FN), then the consumers catch up with it
  [[ -n "$1" ]] || return 0
  "$1" "$2"
  drained 200 || log "    the consumers are still $(backlog) entries behind 20 s after preparing"
}
GHZ_COMMON=(--insecure --duration-stop ignore --format json --cpus "$(nproc)")
AUTH_MD="{\"authorization\":\"Bearer $API_KEY\"}"
RUN_ID="$(date +%s)"
new_lead_data() { # $1: e-mail prefix; each call gets a new UUID e-mail
  printf '{"lead":{"email":"%s-{{.UUID}}@example.com","givenName":"Ada","channel":"CHANNEL_WEB"}}' "$1"
}
ghz_capture() { # ghz_capture DATA ARGS...
  local data="$1"; shift
  "$GHZ" "${GHZ_COMMON[@]}" --call crm.marketing.v1.MarketingService/CaptureLead \
    --data "$data" --metadata "$AUTH_MD" "$@" "$GRPC_ADDR"
}
rest_load() { # rest_load DURATION [RUN]: RUN (default REST_RUN) makes the e-mails unique
  local run="${2:-$REST_RUN}"
  if [[ "$REST_TOOL" == wrk ]]; then
    wrk -t 2 -c "$CONC" -d "$1" --latency -s "$BENCH/capture_lead.lua" \
      -H "Authorization: Bearer $API_KEY" "$HTTP_URL/v1/leads" -- "$run"
  else
    "$BIN/httpload" -url "$HTTP_URL/v1/leads" -key "$API_KEY" -c "$CONC" -d "$1" -run "$run"
  fi
}
rest_fresh() { REST_RUN="${RUN_ID}r$1"; } # a run id per attempt: a re-run's e-mails are new leads too
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
rinfo() { "${RCLI[@]}" info "$1" | tr -d '\r'; }
rmem() { "${RCLI[@]}" info memory | tr -d '\r' | sed -n 's/^used_memory://p'; }

# ------------------------------------------------------------------------------------- warm-up
log "warming up for $WARMUP (gRPC CaptureLead, REST, health)"
ghz_capture "$(new_lead_data warm)" --concurrency "$CONC" --duration "$WARMUP" >"$WORK/warmup-grpc.json" 2>"$WORK/warmup-grpc.err" ||
  die "warm-up: ghz failed: $(tail -n 5 "$WORK/warmup-grpc.err")"
rest_load 2s "${RUN_ID}w" >"$WORK/warmup-rest.out" 2>&1 || die "warm-up: $REST_TOOL failed: $(tail -n 5 "$WORK/warmup-rest.out")"
"$GHZ" "${GHZ_COMMON[@]}" --concurrency "$CONC" --call grpc.health.v1.Health/Check --duration 1s "$GRPC_ADDR" >/dev/null 2>&1 ||
  die "warm-up: ghz health failed"

mapfile -t STREAMS < <("${RCLI[@]}" --scan --pattern 'crm:{p*}:*:events')
# The lead keys: crm:{p<N>}:marketing:dev:...; found, not assumed, so partitioning may change. The
# list of all leads is a bucketed index (pkg/commit bucket.go): its directory is <index>#d.
LEADS_DIR="$("${RCLI[@]}" --scan --pattern 'crm:*:marketing:dev:leads#d' | head -n 1)"
[[ -n "$LEADS_DIR" ]] || die "no lead index directory crm:*:marketing:dev:leads#d after the warm-up"
KEY_PREFIX="${LEADS_DIR%:marketing:dev:leads#d}"
LEADS_KEY="$KEY_PREFIX:marketing:dev:leads"
# lead_count: the members of the bucketed index of all leads, counted by the record layer's own read
# script (pkg/commit bucket.lua + bucket_read.lua).
BUCKET_READ="$(cat "$ROOT/pkg/commit/bucket.lua" "$ROOT/pkg/commit/bucket_read.lua")"
lead_count() { "${RCLI[@]}" eval "$BUCKET_READ" 1 "$LEADS_KEY" count; }
STREAM_KEY="$KEY_PREFIX:marketing:events"
mem_of() { # mem_of KEY...: the sum of MEMORY USAGE (all samples) of the keys, in one script call
  # per 500 keys (bucketed indexes make thousands of small keys)
  local t=0 m i
  local sum='local t = 0 for _, k in ipairs(KEYS) do t = t + (redis.call("MEMORY", "USAGE", k, "SAMPLES", 0) or 0) end return t'
  for ((i = 0; i < $#; i += 500)); do
    local part=("${@:i+1:500}")
    m="$("${RCLI[@]}" eval "$sum" "${#part[@]}" "${part[@]}")"
    t=$((t + ${m:-0}))
  done
  echo "$t"
}
redis_snapshot() { # redis_snapshot FILE: used_memory, lead count, the lead's shared keys by part
  local index=() search=() k
  while IFS= read -r k; do
    if [[ "$k" == *:leads:search:* ]]; then search+=("$k"); else index+=("$k"); fi
  done < <("${RCLI[@]}" --scan --pattern "$KEY_PREFIX:marketing:dev:leads*")
  {
    echo "used_memory=$(rmem)"
    echo "leads=$(lead_count)"
    echo "index=$(mem_of "${index[@]}")"
    echo "search=$(mem_of "${search[@]}")"
    local identity=()
    mapfile -t identity < <("${RCLI[@]}" --scan --pattern "$KEY_PREFIX:marketing:dev:lead-emails*")
    echo "identity=$(mem_of "${identity[@]}")"
    echo "stream=$(mem_of "$STREAM_KEY")"
    echo "events=$("${RCLI[@]}" xlen "$STREAM_KEY")"
  } >"$1"
}
record_sample() { # record_sample FILE: MEMORY USAGE of up to 200 lead records, one a line
  # awk reads the whole scan (head would end redis-cli early: SIGPIPE under pipefail).
  "${RCLI[@]}" --scan --pattern "$KEY_PREFIX:marketing:dev:lead:*" | awk 'NR <= 200' |
    while IFS= read -r k; do "${RCLI[@]}" memory usage "$k" samples 0; done >"$1"
}
settle() { # wait until calls still in flight when the load generator stopped have landed
  local a b
  a="$(lead_count)"
  for _ in $(seq 1 50); do
    sleep 0.1
    b="$(lead_count)"
    [[ "$a" == "$b" ]] && return 0
    a="$b"
  done
}

# ------------------------------------------------------------------------------------- the runs
log "(a) gRPC health Check, ghz -c $CONC for $DURATION"
measure_quiet health "$GHZ" "${GHZ_COMMON[@]}" --concurrency "$CONC" --call grpc.health.v1.Health/Check --duration "$DURATION" "$GRPC_ADDR"

log "(b) gRPC CaptureLead (a new lead per call), ghz -c $CONC for $DURATION"
settle
redis_snapshot "$WORK/mem.before"
rinfo commandstats >"$WORK/cmdstats.before"
measure_quiet capture ghz_capture "$(new_lead_data g)" --concurrency "$CONC" --duration "$DURATION"
settle
redis_snapshot "$WORK/mem.after"
record_sample "$WORK/mem.records"
rinfo commandstats >"$WORK/cmdstats.after"

log "(c) REST POST /v1/leads (a new lead per call), $REST_TOOL -c $CONC for $DURATION"
measure_quiet --prepare rest_fresh rest rest_load "$DURATION"
grep -q '^WRKJSON ' "$WORK/rest.out" || die "$REST_TOOL printed no result: $(tail -n 5 "$WORK/rest.out" "$WORK/rest.err")"

SAT_RPS="$(json_field "$WORK/capture.out" rps)"
HALF_RPS="$(awk -v r="$SAT_RPS" 'BEGIN { h = int(r / 2); print (h < 1 ? 1 : h) }')"
log "(d) gRPC CaptureLead at half saturation: ghz --rps $HALF_RPS -c $CONC for $DURATION"
settle
# The first half second is left out of the tally: ghz's own start (new connection, workers) shows
# there as a short burst of queueing that is not the server's steady state.
HALF_SKIP=$((HALF_RPS / 2))
measure_quiet half ghz_capture "$(new_lead_data h)" --concurrency "$CONC" --rps "$HALF_RPS" \
  --skipFirst "$HALF_SKIP" --duration "$DURATION"

if [[ "$REPEAT" != 0 ]]; then
  log "(e) gRPC CaptureLead re-capturing known leads (one per worker), ghz -c $CONC for $DURATION"
  settle
  measure_quiet repeat ghz_capture \
    '{"lead":{"email":"r'"$RUN_ID"'-{{.WorkerID}}@example.com","givenName":"Ada","channel":"CHANNEL_WEB"}}' \
    --concurrency "$CONC" --duration "$DURATION"
fi

# (g) the services' own cases: each bench/cases/*.sh sets up its data and calls bench_case, measured
# like the runs above and reported as a ratio against (a). Each takes measure_quiet's --prepare FN
# first when its command uses up its data.
case_run() { # case_run TSV [--prepare FN] NAME LABEL CMD...: the case, listed in TSV for report.py
  local tsv="$1" prepare=()
  shift
  [[ "$1" == --prepare ]] && { prepare=(--prepare "$2"); shift 2; }
  local name="$1" label="$2"; shift 2
  log "(g) $label"
  settle
  measure_quiet "${prepare[@]}" "case-$name" "$@"
  printf '%s\t%s\n' "case-$name" "(g) $label" >>"$WORK/$tsv"
}
bench_case() { case_run cases.tsv "$@"; }           # [--prepare FN] NAME LABEL CMD...
bench_half_case() { case_run halfcases.tsv "$@"; }  # a fixed-rate run, reported by its p99
bench_rest_case() { case_run restcases.tsv "$@"; }  # a wrk run; NAME-rest pairs with gRPC case NAME
# Top-level Redis commands per call: MONITOR over a short sequential run shows every command a
# client sends ("[0 127.0.0.1:port]") apart from those a script runs ("[0 lua]").
monitor_run() { # monitor_run NAME CMD...: CMD (a sequential ghz run) under MONITOR
  local name="$1"; shift
  settle
  "${RCLI[@]}" monitor >"$WORK/$name.monitor" 2>&1 &
  MONITOR_PID=$!
  for i in $(seq 1 50); do
    grep -q '^OK' "$WORK/$name.monitor" 2>/dev/null && break
    [[ $i == 50 ]] && die "redis-cli monitor did not start"
    sleep 0.1
  done
  local trips0
  trips0="$(request_trips CaptureLead)"
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || die "$name: ghz failed: $(tail -n 5 "$WORK/$name.err")"
  # The request path's own round trips, as crm counts them (crm_redis_request_round_trips_total):
  # what the calls sent while they were served, not the reactions sharing their connections.
  echo "$(( $(request_trips CaptureLead) - trips0 ))" >"$WORK/$name.trips"
  sleep 0.2 # let redis-cli write out the last lines; the calls themselves have all returned
  # Which connection is whose: crm names its request path's pool "crm" and the event bus' "crm-bus".
  "${RCLI[@]}" client list >"$WORK/$name.clients"
  stop_pid "$MONITOR_PID"
  MONITOR_PID=""
}
for case_file in "$BENCH"/cases/*.sh; do
  [[ -e "$case_file" ]] || continue
  # BENCH_CASES (a space-separated list of case file names without .sh) runs only those cases.
  [[ -z "${BENCH_CASES:-}" || " $BENCH_CASES " == *" $(basename "$case_file" .sh) "* ]] || continue
  # shellcheck source=/dev/null
  source "$case_file"
done

log "Redis commands per call: MONITOR over $MONITOR_CALLS sequential CaptureLead calls (new, then repeat)"
monitor_run monitor-new ghz_capture "$(new_lead_data m)" --concurrency 1 --total "$MONITOR_CALLS"
REPEAT_DATA='{"lead":{"email":"m'"$RUN_ID"'-same@example.com","givenName":"Ada","channel":"CHANNEL_WEB"}}'
ghz_capture "$REPEAT_DATA" --concurrency 1 --total 1 >/dev/null 2>&1 || die "could not create the repeat lead"
monitor_run monitor-repeat ghz_capture "$REPEAT_DATA" --concurrency 1 --total "$MONITOR_CALLS"

# (i) lists flat from 10 thousand to 1 million leads: a tenant of its own is filled by bench/lists
# (marketing's own store, one atomic write per lead) to each size in turn, and at each size ghz
# reads the first page of ListLeads (newest first, 50 leads) for LISTS_DURATION at 10 concurrent.
if [[ "$LISTS" != 0 ]]; then
  "$BIN/crm" admin tenant create --id lists --name Lists --redis-url "redis://127.0.0.1:$REDIS_PORT" >/dev/null ||
    die "could not create the lists tenant"
  LISTS_KEY="$("$BIN/crm" admin key create --tenant lists --scopes marketing.read,marketing.export --redis-url "redis://127.0.0.1:$REDIS_PORT" |
    sed -n 's/^secret (shown once, store it now): //p')"
  [[ -n "$LISTS_KEY" ]] || die "could not create the lists tenant's key"
  have=0
  for n in 10000 100000 1000000; do
    ((n <= LISTS_MAX)) || break
    log "(i) ListLeads over $n leads: filling the tenant (bench/lists), then ghz -c 10 for $LISTS_DURATION"
    "$BIN/listsfill" --redis-url "redis://127.0.0.1:$REDIS_PORT" --tenant lists --add $((n - have)) >>"$WORK/lists-fill.out" 2>&1 ||
      die "bench/lists failed: $(tail -n 3 "$WORK/lists-fill.out")"
    have=$n
    wait_quiet
    "$GHZ" "${GHZ_COMMON[@]}" --call crm.marketing.v1.MarketingService/ListLeads --data '{"page_size":50}' \
      --metadata "{\"authorization\":\"Bearer $LISTS_KEY\"}" --concurrency 10 --duration "$LISTS_DURATION" \
      "$GRPC_ADDR" >"$WORK/lists-$n.out" 2>"$WORK/lists-$n.err" || die "ListLeads over $n leads: ghz failed"
    # (j) lookup and search at the same size: an e-mail lookup of a known lead, and the first page of
    # a name prefix every lead matches (the worst case for a prefix: the whole index in range).
    if [[ -z "${LOOKUP_EMAIL:-}" ]]; then
      LOOKUP_EMAIL="$("$BIN/grpcurl" -plaintext -H "authorization: Bearer $LISTS_KEY" -d '{"page_size":1}' "$GRPC_ADDR" \
        crm.marketing.v1.MarketingService/ListLeads | sed -n 's/^ *"email": "\(.*\)",$/\1/p' | head -n 1)"
      [[ -n "$LOOKUP_EMAIL" ]] || die "could not read a lead's e-mail for the lookup run"
    fi
    wait_quiet
    "$GHZ" "${GHZ_COMMON[@]}" --call crm.marketing.v1.MarketingService/ListLeads \
      --data "{\"page_size\":50,\"filter\":\"email = \\\"$LOOKUP_EMAIL\\\"\"}" \
      --metadata "{\"authorization\":\"Bearer $LISTS_KEY\"}" --concurrency 10 --duration "$LISTS_DURATION" \
      "$GRPC_ADDR" >"$WORK/lookup-$n.out" 2>"$WORK/lookup-$n.err" || die "lookup over $n leads: ghz failed"
    wait_quiet
    "$GHZ" "${GHZ_COMMON[@]}" --call crm.marketing.v1.MarketingService/ListLeads \
      --data '{"page_size":50,"filter":"displayName:\"ada lo*\""}' \
      --metadata "{\"authorization\":\"Bearer $LISTS_KEY\"}" --concurrency 10 --duration "$LISTS_DURATION" \
      "$GRPC_ADDR" >"$WORK/search-$n.out" 2>"$WORK/search-$n.err" || die "search over $n leads: ghz failed"
    # (k) export: every lead of the tenant as NDJSON through the gateway, rows and seconds (up to
    # BENCH_EXPORT_MAX leads, 100 thousand by default).
    if ((n <= ${BENCH_EXPORT_MAX:-100000})); then
      wait_quiet
      start_ns=$(date +%s%N)
      rows=$(curl -sf -H "Authorization: Bearer $LISTS_KEY" "$HTTP_URL/v1/leads:export" | wc -l) ||
        die "export over $n leads failed"
      echo "$rows $(( $(date +%s%N) - start_ns ))" >"$WORK/export-$n.out"
    fi
  done
fi

# (h) tracing at a 10 % sampling ratio: crm dev again, now exporting the sampled traces (OTLP over
# HTTP to a sink that takes and drops them, bench/otlpsink.py), against untraced runs at the same
# point. All start the same way: crm dev restarted, a 2 s warm-up, the consumers caught up. (b) is
# not the reference: it ran on a fresh Redis, and by now Redis holds every earlier run's leads,
# events and history (and the lists' million leads), which costs more per capture, traced or not.
if [[ "$TRACED" != 0 ]]; then
  free_port SINK_PORT
  python3 "$BENCH/otlpsink.py" "$SINK_PORT" >"$WORK/otlpsink.out" 2>&1 &
  SINK_PID=$!
  restart_for_h() { # restart_for_h [VAR=value...]: crm dev afresh, warmed up, no backlog left
    stop_pid "$CRM_PID"
    start_crm "$@"
    ghz_capture "$(new_lead_data "hw$RANDOM")" --concurrency "$CONC" --duration 2s >/dev/null 2>&1 ||
      die "warm-up of (h) failed"
    drained 3000 || log "    the consumers are still $(backlog) entries behind after 5 minutes"
  }
  untraced_fresh() { restart_for_h; }
  traced_fresh() {
    restart_for_h OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
      OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT" \
      OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1
  }
  # Untraced, traced, traced, untraced: Redis grows with every run, and the order cancels that
  # (a linear drift) out of the comparison.
  for run in untraced traced traced2 untraced2; do
    if [[ "$run" == untraced* ]]; then
      log "(h) gRPC CaptureLead untraced (the reference), crm dev restarted, ghz -c $CONC for $DURATION"
      measure_quiet --prepare untraced_fresh "$run" ghz_capture "$(new_lead_data "$run")" --concurrency "$CONC" --duration "$DURATION"
    else
      log "(h) gRPC CaptureLead with 10 % of traces sampled and exported, ghz -c $CONC for $DURATION"
      measure_quiet --prepare traced_fresh "$run" ghz_capture "$(new_lead_data "$run")" --concurrency "$CONC" --duration "$DURATION"
    fi
  done
  stop_pid "$SINK_PID"
  SINK_PID=""
fi

# The event bus, on a redis-server of its own (a fresh keyspace, nothing of crm dev's in its
# streams), with the partition count crm dev recorded. busbench prints "name value" lines; its exit
# status (non-zero on an error or a lost or doubly applied event) goes to the report.
BUS_PARTITIONS=""
if [[ "$BUS" != 0 ]]; then
  BUS_PARTITIONS="$("${RCLI[@]}" get crm:meta:partitions | tr -d '\r')"
  [[ "$BUS_PARTITIONS" =~ ^[0-9]+$ ]] || BUS_PARTITIONS=16
  free_port BUS_REDIS_PORT
  mkdir -p "$WORK/bus-redis"
  log "(f) event bus: bench/bus on a second redis-server (127.0.0.1:$BUS_REDIS_PORT), $BUS_PARTITIONS partitions," \
    "$BUS_EVENTS events drained, then $BUS_RATE events/s for $DURATION"
  redis-server --port "$BUS_REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --dir "$WORK/bus-redis" --logfile "$WORK/bus-redis.log" >"$WORK/bus-redis.out" 2>&1 &
  BUS_REDIS_PID=$!
  for i in $(seq 1 100); do
    [[ "$(redis-cli -h 127.0.0.1 -p "$BUS_REDIS_PORT" ping 2>/dev/null)" == PONG ]] && break
    kill -0 "$BUS_REDIS_PID" 2>/dev/null || die "the bus redis-server exited: $(tail -q -n 5 "$WORK/bus-redis.out" "$WORK/bus-redis.log" 2>/dev/null)"
    [[ $i == 100 ]] && die "the bus redis-server did not answer PING within 10s"
    sleep 0.1
  done
  BUS_ARGS=(--redis-url "redis://127.0.0.1:$BUS_REDIS_PORT" --partitions "$BUS_PARTITIONS"
    --duration "$DURATION" --rate "$BUS_RATE" --events "$BUS_EVENTS")
  [[ "$BUS_TUNED_BLOCK" != 0 ]] && BUS_ARGS+=(--tuned-block "$(secs "$BUS_TUNED_BLOCK")")
  wait_quiet
  "$BIN/busbench" "${BUS_ARGS[@]}" >"$WORK/bus.out" 2>"$WORK/bus.err" &
  LOAD_PID=$!
  bus_rc=0
  wait "$LOAD_PID" || bus_rc=$?
  LOAD_PID=""
  echo "$bus_rc" >"$WORK/bus.rc"
  [[ $bus_rc -eq 0 ]] || log "busbench exited with status $bus_rc: $(tail -n 5 "$WORK/bus.err")"
  stop_pid "$BUS_REDIS_PID"
  BUS_REDIS_PID=""
fi

# ---------------------------------------------------------------------------------------- report
{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "duration=$DURATION"
  echo "concurrency=$CONC"
  echo "rest_tool=$REST_TOOL"
  echo "rest_tool_version=$([[ $REST_TOOL == wrk ]] && (wrk -v 2>&1 | head -n 1 | awk '{print $2}') || echo go)"
  echo "half_rps=$HALF_RPS"
  echo "half_skip=$HALF_SKIP"
  echo "monitor_calls=$MONITOR_CALLS"
  echo "bus=$BUS"
  echo "bus_partitions=$BUS_PARTITIONS"
  echo "bus_rate=$BUS_RATE"
  echo "lists=$LISTS"
  echo "lists_duration=$LISTS_DURATION"
  echo "cpus=$(nproc)"
  echo "cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  echo "revision=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
  echo "redis_version=$(rinfo server | sed -n 's/^redis_version://p')"
} >"$WORK/meta.env"

mkdir -p "$BENCH/results"
set +e
python3 "$BENCH/report.py" "$WORK" | tee "$BENCH/results/latest.txt"
rc=${PIPESTATUS[0]}
set -e
# The raw results beside latest.txt, for a closer look (bench/results/ is not committed).
rm -rf "$BENCH/results/raw" && mkdir -p "$BENCH/results/raw"
cp "$WORK"/*.out "$WORK"/*.cpu "$WORK"/*.monitor "$WORK"/*.trips "$WORK"/*.clients "$WORK"/*.tsv "$WORK"/*.results "$WORK"/mem.* "$WORK"/cmdstats.* "$WORK"/meta.env \
  "$WORK"/crm.log "$WORK"/bus.err "$WORK"/bus.rc "$BENCH/results/raw/" 2>/dev/null || true
[[ $rc -eq 0 ]] || { KEEP_WORK=1; exit "$rc"; }
