# bench/cases/import.sh, sourced by bench/run.sh (g): `crm import` of BENCH_IMPORT_ROWS (200,000) new
# leads as one operation (a CSV streamed to ImportLeads over gRPC). Reports rows/s, judged by
# bench/report.py as case-import (target: >= 20,000 rows/s and >= 5x (b) CaptureLead's req/s), how
# long the consumer groups take to catch up with the import's events once it has ended, and the
# export rows/s of the imported leads (GET /v1/leads:export?filter=channel = CHANNEL_EVENT through
# the gateway; the other runs capture CHANNEL_WEB leads). BENCH_IMPORT=0 skips it.

if [[ "${BENCH_IMPORT:-1}" != 0 ]]; then
  IMPORT_ROWS="${BENCH_IMPORT_ROWS:-200000}"
  IMPORT_FILE="$WORK/import.csv"
  awk -v n="$IMPORT_ROWS" -v run="$RUN_ID" 'BEGIN {
    print "email,givenName,familyName,company,channel"
    for (i = 0; i < n; i++) printf "imp%s-%d@example.com,Given %d,Family %d,Company %d,EVENT\n", run, i, i, i % 1000, i % 5000
  }' >"$IMPORT_FILE"
  log "(g) import: crm import of $IMPORT_ROWS new leads ($(du -h "$IMPORT_FILE" | cut -f1)), one operation"
  settle
  wait_quiet
  IMPORT_T0="$(date +%s.%N)"
  CRM_API_KEY="$API_KEY" "$BIN/crm" import "$IMPORT_FILE" --kind leads --addr "$GRPC_ADDR" >"$WORK/import.log" 2>&1 ||
    die "crm import failed: $(tail -n 5 "$WORK/import.log")"
  IMPORT_T1="$(date +%s.%N)"
  # the consumers' reactions to the import's events: 10 minutes at most
  drained 6000 || log "    the consumers are still $(backlog) entries behind 10 minutes after the import"
  IMPORT_T2="$(date +%s.%N)"
  IMPORT_DONE="$(grep ' SUCCEEDED: ' "$WORK/import.log" | tail -n 1)"
  [[ -n "$IMPORT_DONE" ]] || die "crm import did not succeed: $(tail -n 5 "$WORK/import.log")"
  IMPORT_CREATED="$(sed -n 's/.*, \([0-9]*\) created,.*/\1/p' <<<"$IMPORT_DONE")"
  # A ghz-shaped report, so report.py reads the case like the others: rows as calls.
  awk -v n="$IMPORT_CREATED" -v t0="$IMPORT_T0" -v t1="$IMPORT_T1" 'BEGIN {
    printf "{\"statusCodeDistribution\":{\"OK\":%d},\"total\":%.0f,\"latencyDistribution\":[]}\n", n, (t1 - t0) * 1e9
  }' >"$WORK/case-import.out"
  printf '%s\t%s\n' "case-import" "(g) import $IMPORT_ROWS leads (rows/s)" >>"$WORK/cases.tsv"
  EXPORT_T0="$(date +%s.%N)"
  EXPORT_ROWS="$(curl -fsS "$HTTP_URL/v1/leads:export?filter=channel%20%3D%20CHANNEL_EVENT" -H "Authorization: Bearer $API_KEY" | wc -l)"
  EXPORT_T1="$(date +%s.%N)"
  awk -v n="$IMPORT_CREATED" -v t0="$IMPORT_T0" -v t1="$IMPORT_T1" -v t2="$IMPORT_T2" -v e="$EXPORT_ROWS" \
    -v e0="$EXPORT_T0" -v e1="$EXPORT_T1" 'BEGIN {
    printf "import: %d rows in %.1f s = %.0f rows/s; consumers caught up %.1f s after it ended; export: %d rows in %.1f s = %.0f rows/s\n",
      n, t1 - t0, n / (t1 - t0), t2 - t1, e, e1 - e0, e / (e1 - e0)
  }' | tee "$WORK/import.results" >&2
fi
