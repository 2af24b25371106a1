# bench/cases/marketing.sh, sourced by bench/run.sh (g): marketing's RecordEngagement (a rescoring
# write) over gRPC against the same-run health baseline (a), and through the gateway against gRPC. The calls spread over 50 leads (ghz sends the
# messages of a JSON array round robin), so they measure the write, not 50 callers queueing on the
# etag of one lead.

ENGAGE_DATA="$WORK/engagements.json"
ENGAGE_IDS=()
{
  printf '['
  for i in $(seq 1 50); do
    lead="$(curl -fsS -X POST "$HTTP_URL/v1/leads" -H "Authorization: Bearer $API_KEY" \
      -d '{"email":"engage-'"$RUN_ID-$i"'@example.com","company":"Bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')" ||
      die "could not capture the engagement bench's leads"
    ENGAGE_IDS+=("$lead")
    [[ $i -gt 1 ]] && printf ','
    printf '{"lead_id":"%s","engagement":{"type":"ENGAGEMENT_TYPE_PAGE_VIEW"}}' "$lead"
  done
  printf ']'
} >"$ENGAGE_DATA"
bench_case record-engagement "gRPC RecordEngagement (50 leads, round robin)" \
  "$GHZ" "${GHZ_COMMON[@]}" --call crm.marketing.v1.MarketingService/RecordEngagement --data-file "$ENGAGE_DATA" \
  --metadata "$AUTH_MD" --concurrency "$CONC" --duration "$DURATION" "$GRPC_ADDR"
if [[ "$REST_TOOL" == wrk ]]; then
  bench_rest_case record-engagement-rest "REST POST /v1/leads/{id}/engagements (50 leads, round robin)" \
    wrk -t 2 -c "$CONC" -d "$DURATION" --latency -s "$BENCH/engagement.lua" \
    -H "Authorization: Bearer $API_KEY" "$HTTP_URL" -- "${ENGAGE_IDS[@]}"
else
  log "(g) REST RecordEngagement skipped: it needs wrk"
fi
