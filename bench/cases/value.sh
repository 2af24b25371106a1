# bench/cases/value.sh, sourced by bench/run.sh (g): what a customer is worth and the funnel by
# period, read at two sizes of the tenant to show both reads stay flat in the number of customers.
# .bin/valueseed (bench/value) fills the dev tenant through sales' and marketing's own writes:
# customers with one or two orders each (value, rankings), a tenth of them moving along the
# lifecycle (funnel counters by period). Then GetCustomerValue (200 customers, round robin) and
# GetLifecycleFunnel of the current month run at BENCH_VALUE_SMALL customers, the seed grows the
# tenant to BENCH_VALUE_LARGE, and both run again. report.py judges the large run against the
# small one (>= 0.8 of its req/s) as well as against the health baseline.
# BENCH_VALUE=0 skips the case (seeding the large tenant takes minutes on a busy machine).

VALUE_SMALL="${BENCH_VALUE_SMALL:-10000}"
VALUE_LARGE="${BENCH_VALUE_LARGE:-200000}"

if [[ "${BENCH_VALUE:-1}" == 0 ]]; then
  log "(g) value: skipped (BENCH_VALUE=0)"
else
  VALUE_PARTITIONS="$("${RCLI[@]}" get crm:meta:partitions | tr -d '\r')"
  [[ "$VALUE_PARTITIONS" =~ ^[0-9]+$ ]] || die "no partition count recorded in the bench's Redis"
  value_seed() { # value_seed N: adds N customers to the dev tenant, prints some of their ids
    "$BIN/valueseed" --redis-url "redis://127.0.0.1:$REDIS_PORT" --partitions "$VALUE_PARTITIONS" --tenant dev \
      --customers "$1" 2>>"$WORK/valueseed.log"
  }
  value_drained() { # the seed's orders and moves are events crm's consumers react to (marketing's
    # mirror of the values, integration's history): the reads are measured once they caught up, not
    # against that backlog (10 minutes at most)
    mapfile -t STREAMS < <("${RCLI[@]}" --scan --pattern 'crm:{p*}:*:events') # sales' streams are new
    drained 6000 || true
    [[ "$(backlog)" == 0 ]] || log "(g) value: the consumers still have $(backlog) events to handle"
  }
  value_runs() { # value_runs SIZE LABEL
    bench_case "get-customer-value-$1" "gRPC GetCustomerValue at $2 customers" \
      "$GHZ" "${GHZ_COMMON[@]}" --call crm.sales.v1.SalesService/GetCustomerValue --data-file "$WORK/value-ids.json" \
      --metadata "$AUTH_MD" --concurrency "$CONC" --duration "$DURATION" "$GRPC_ADDR"
    bench_case "get-funnel-period-$1" "gRPC GetLifecycleFunnel of a month at $2 customers" \
      "$GHZ" "${GHZ_COMMON[@]}" --call crm.marketing.v1.MarketingService/GetLifecycleFunnel \
      -d "{\"period\":\"$(date -u +%Y-%m)\"}" --metadata "$AUTH_MD" --concurrency "$CONC" --duration "$DURATION" "$GRPC_ADDR"
    # Round trips per read: 100 sequential calls of each under MONITOR (report.py counts the
    # top-level commands on crm's request-path connections, a pipeline's commands one by one).
    monitor_run "monitor-value-$1" "$GHZ" "${GHZ_COMMON[@]}" --call crm.sales.v1.SalesService/GetCustomerValue \
      --data-file "$WORK/value-ids.json" --metadata "$AUTH_MD" --concurrency 1 --total 100 "$GRPC_ADDR"
    monitor_run "monitor-funnel-$1" "$GHZ" "${GHZ_COMMON[@]}" --call crm.marketing.v1.MarketingService/GetLifecycleFunnel \
      -d "{\"period\":\"$(date -u +%Y-%m)\"}" --metadata "$AUTH_MD" --concurrency 1 --total 100 "$GRPC_ADDR"
  }
  log "(g) value: seeding $VALUE_SMALL customers"
  value_seed "$VALUE_SMALL" | python3 -c 'import json, sys; print(json.dumps([{"customer_id": l.strip()} for l in sys.stdin if l.strip()]))' \
    >"$WORK/value-ids.json" || die "could not seed the value bench (see $WORK/valueseed.log)"
  value_drained
  value_runs small "$VALUE_SMALL"
  log "(g) value: growing the tenant to $VALUE_LARGE customers"
  value_seed "$((VALUE_LARGE - VALUE_SMALL))" >/dev/null || die "could not grow the value bench (see $WORK/valueseed.log)"
  value_drained
  value_runs large "$VALUE_LARGE"
fi
