# bench/cases/integration.sh, sourced by bench/run.sh (g): what the integration service (issue 16:
# audit log, timelines, webhook deliveries) costs a write. The same gRPC CaptureLead run (new
# leads, ghz -c CONC for DURATION) twice, back to back: against crm dev as the other runs see it
# (every service), then against crm dev restarted with --target=marketing,sales,product,support (no
# integration service; the gateway stays, its integration routes answer 503). Each run's CPU is
# counted until every consumer group that runs has drained (bench/run.sh's measure), so the
# integration recorder's work on the capture's events is in the first and not in the second.
# Writes integration.results (crm and Redis CPU per capture with and without, and the difference),
# which report.py prints. crm dev is restarted with every service afterwards, and the cases after
# this one start once the integration consumer caught up with what it missed.
# No webhook endpoint is registered yet (bench/cases/webhooks.sh comes later): recording only.
# BENCH_INTEGRATION_COST=0 skips it.

if [[ "${BENCH_INTEGRATION_COST:-1}" != 0 ]]; then
  integration_capture() { # integration_capture NAME: the measured CaptureLead run
    log "(g) integration cost: gRPC CaptureLead (a new lead per call), ghz -c $CONC for $DURATION, $1"
    settle
    measure_quiet "integration-$1" ghz_capture "$(new_lead_data "i$1")" --concurrency "$CONC" --duration "$DURATION"
  }
  restart_crm() { # restart_crm [VAR=value...]: crm dev again, warmed up like the first start
    stop_pid "$CRM_PID"
    start_crm "$@"
    ghz_capture "$(new_lead_data iw)" --concurrency "$CONC" --duration 2s >/dev/null 2>&1 ||
      die "integration cost: the warm-up after the restart failed"
  }
  integration_capture with
  # The integration group stays on the streams while its service is away: its backlog is not
  # this run's to wait for.
  restart_crm CRM_TARGET=marketing,sales,product,support
  BACKLOG_SKIP=integration
  integration_capture without
  BACKLOG_SKIP=""
  restart_crm
  drained 1200 || true # the integration consumer records what it missed (2 minutes at most)
  [[ "$(backlog)" == 0 ]] || log "(g) integration cost: the consumers still have $(backlog) events to handle"
  cpu_per_call() { # cpu_per_call NAME WHO: µs of WHO's CPU per call of the run NAME
    local calls
    calls="$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1]))["statusCodeDistribution"].values()))' \
      "$WORK/integration-$1.out")"
    awk -F= -v who="$2" -v n="$calls" '$1 == who && n > 0 { printf "%.0f", $2 * 1e6 / n }' "$WORK/integration-$1.cpu"
  }
  {
    for run in with without; do
      echo "integration_${run}_rps $(json_field "$WORK/integration-$run.out" rps)"
      echo "integration_${run}_crm_us $(cpu_per_call "$run" crm)"
      echo "integration_${run}_redis_us $(cpu_per_call "$run" redis)"
    done
  } >"$WORK/integration.results"
  log "(g) integration cost: $(tr '\n' ' ' <"$WORK/integration.results")"
fi
