# bench/cases/webhooks.sh, sourced by bench/run.sh (g): webhook delivery from commit to receiver at
# 500 events/s (DESIGN.md §10: p99 under 250 ms). A receiver (bench/webhooks, .bin/webhookrecv)
# listens on loopback (crm dev allows private targets); an endpoint takes marketing.lead.captured;
# ghz captures new leads at BENCH_WEBHOOK_RATE (500/s) for the run's duration, one delivery each.
# The receiver measures arrival − the event's occurred_time and dedupes on webhook-id; it waits for
# as many deliveries as ghz captured leads (told once the load is over: ghz may not reach the
# rate), 60 s after the load at most. Where the
# time goes: crm's crm.webhook.stage.duration histograms (read, batch, record, queue, send), scraped
# before and after, summed up by bench/webhookstages.py (count, mean and p99 per stage).
# BENCH_WEBHOOKS=0 skips it.

if [[ "${BENCH_WEBHOOKS:-1}" != 0 ]]; then
  WEBHOOK_RATE="${BENCH_WEBHOOK_RATE:-500}"
  (cd "$ROOT/bench/webhooks" && GOWORK=off go build -o "$BIN/webhookrecv" .) || die "could not build bench/webhooks"
  WEBHOOK_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  WEBHOOK_SECS="${DURATION%s}"
  "$BIN/webhookrecv" --addr "127.0.0.1:$WEBHOOK_PORT" --timeout "$((WEBHOOK_SECS + 120))s" \
    >"$WORK/webhooks.out" 2>"$WORK/webhooks.err" &
  WEBHOOK_PID=$!
  WEBHOOK_ENDPOINT="$(curl -fsS -X POST "$HTTP_URL/v1/webhookEndpoints" -H "Authorization: Bearer $API_KEY" \
    -d '{"url":"http://127.0.0.1:'"$WEBHOOK_PORT"'/hook","eventTypes":["marketing.lead.captured"]}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')" ||
    die "could not register the bench webhook endpoint"
  log "(g) webhooks: ghz CaptureLead at $WEBHOOK_RATE/s for $DURATION, each delivered to a loopback receiver"
  settle
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" >"$WORK/webhooks.m0" || die "webhooks: could not read crm's metrics"
  ghz_capture "$(new_lead_data w)" --concurrency "$CONC" --rps "$WEBHOOK_RATE" --duration "$DURATION" \
    >"$WORK/webhooks-load.out" 2>"$WORK/webhooks-load.err" || die "webhooks: ghz failed: $(tail -n 5 "$WORK/webhooks-load.err")"
  # Every capture ghz saw succeed made a new lead, so one marketing.lead.captured and one delivery.
  WEBHOOK_EXPECT="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["statusCodeDistribution"].get("OK", 0))' \
    "$WORK/webhooks-load.out")"
  WEBHOOK_REACHED="$(json_field "$WORK/webhooks-load.out" rps)"
  curl -fsS -X POST "http://127.0.0.1:$WEBHOOK_PORT/expect?n=$WEBHOOK_EXPECT" >/dev/null ||
    die "webhooks: could not tell the receiver how many deliveries to wait for"
  wait "$WEBHOOK_PID" || true
  # The receiver is gone: without its endpoint, the runs after this one do not pay for deliveries
  # failing and retrying in the background.
  curl -fsS -X DELETE "$HTTP_URL/v1/webhookEndpoints/$WEBHOOK_ENDPOINT" -H "Authorization: Bearer $API_KEY" >/dev/null ||
    die "could not delete the bench webhook endpoint"
  printf 'webhook_rate %s\nwebhook_rate_reached %.0f\n' "$WEBHOOK_RATE" "$WEBHOOK_REACHED" >>"$WORK/webhooks.out"
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" >"$WORK/webhooks.m1" || die "webhooks: could not read crm's metrics"
  python3 "$BENCH/webhookstages.py" "$WORK/webhooks.m0" "$WORK/webhooks.m1" >>"$WORK/webhooks.out" ||
    die "webhooks: bench/webhookstages.py failed"
  log "(g) webhooks at $WEBHOOK_RATE/s: $(tr '\n' ' ' <"$WORK/webhooks.out")(target: p99 < 250 ms," \
    "every capture delivered: $WEBHOOK_EXPECT)"
  cat "$WORK/webhooks.out" >>"$WORK/webhooks.results"
fi
