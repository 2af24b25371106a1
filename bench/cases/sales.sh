# bench/cases/sales.sh, sourced by bench/run.sh (g): sales' two cross-service writes, ConvertLead
# (reads the lead from marketing) and AddLineItem (prices the line through product), each at
# saturation (a ratio to the health baseline) and at half of it (p50/p99). Each conversion needs a
# lead nobody converted yet and an opportunity takes at most 100 lines, so the runs are bounded by
# call count (--total) over pools made first, and ghz sends the pool's messages round robin.

SALES_CALLS="${BENCH_SALES_CALLS:-2000}" # calls per run; the lead pool is twice this
SALES_DEALS=60                           # opportunities the line items spread over

sales_pool() { # sales_pool N PREFIX BODY_SUFFIX: captures N leads over REST (16 at a time), one id a line
  python3 - "$HTTP_URL" "$API_KEY" "$1" "$2" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
url, key, n, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def capture(i):
    body = json.dumps({"email": f"{prefix}-{i}@bench.example", "company": f"Bench {i}"}).encode()
    req = urllib.request.Request(url + "/v1/leads", body, {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))["id"]
with ThreadPoolExecutor(16) as pool:
    for lead in pool.map(capture, range(n)):
        print(lead)
PY
}
sales_json() { # sales_json KEY...: the value at that path of the JSON on stdin
  python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[k]
print(v)' "$@"
}
sales_data() { # sales_data TEMPLATE < ids: a JSON array with one message per id (%s is the id)
  python3 -c 'import json, sys; print(json.dumps([json.loads(sys.argv[1] % i.strip()) for i in sys.stdin if i.strip()]))' "$1"
}
sales_run() { # sales_run METHOD DATAFILE ARGS...
  local method="$1" data="$2"; shift 2
  "$GHZ" "${GHZ_COMMON[@]}" --call "crm.sales.v1.SalesService/$method" --data-file "$data" --metadata "$AUTH_MD" "$@" "$GRPC_ADDR"
}

log "(g) sales: capturing $((2 * SALES_CALLS)) leads to convert and $SALES_DEALS deals to add lines to"
sales_pool "$((2 * SALES_CALLS))" "convert-$RUN_ID" >"$WORK/sales-leads.txt" || die "could not capture the sales bench's leads"
head -n "$SALES_CALLS" "$WORK/sales-leads.txt" | sales_data '{"lead_id":"%s"}' >"$WORK/convert-sat.json"
tail -n "$SALES_CALLS" "$WORK/sales-leads.txt" | sales_data '{"lead_id":"%s"}' >"$WORK/convert-half.json"
SALES_PRODUCT="$(curl -fsS -X POST "$HTTP_URL/v1/products" -H "Authorization: Bearer $API_KEY" -d '{"sku":"SALES-'"$RUN_ID"'",
  "displayName":"Sales bench","billingPeriod":"BILLING_PERIOD_MONTHLY","price":{"currencyCode":"EUR","units":"10"}}' | sales_json id)" ||
  die "could not create the sales bench product"
sales_pool "$SALES_DEALS" "deal-$RUN_ID" | while read -r lead; do
  curl -fsS -X POST "$HTTP_URL/v1/leads/$lead:convert" -H "Authorization: Bearer $API_KEY" \
    -d '{"opportunity":{"displayName":"Bench deal","currencyCode":"EUR"}}' | sales_json opportunity id
done >"$WORK/sales-deals.txt" || die "could not open the sales bench's deals"
sales_data '{"opportunity_id":"%s","line_item":{"product_id":"'"$SALES_PRODUCT"'","quantity":1}}' \
  <"$WORK/sales-deals.txt" >"$WORK/lines.json"

bench_case convert-lead "gRPC ConvertLead (marketing read, one write)" \
  sales_run ConvertLead "$WORK/convert-sat.json" --concurrency "$CONC" --total "$SALES_CALLS"
CONVERT_HALF="$(json_field "$WORK/case-convert-lead.out" rps | awk '{ h = int($1 / 2); print (h < 1 ? 1 : h) }')"
bench_half_case convert-lead-half "gRPC ConvertLead at half saturation ($CONVERT_HALF/s)" \
  sales_run ConvertLead "$WORK/convert-half.json" --concurrency "$CONC" --rps "$CONVERT_HALF" --total "$SALES_CALLS"

LINES_TOTAL=$((SALES_DEALS * 40)) # two runs stay under 100 lines per deal
bench_case add-line-item "gRPC AddLineItem (product quote, one write)" \
  sales_run AddLineItem "$WORK/lines.json" --concurrency "$CONC" --total "$LINES_TOTAL"
LINES_HALF="$(json_field "$WORK/case-add-line-item.out" rps | awk '{ h = int($1 / 2); print (h < 1 ? 1 : h) }')"
bench_half_case add-line-item-half "gRPC AddLineItem at half saturation ($LINES_HALF/s)" \
  sales_run AddLineItem "$WORK/lines.json" --concurrency "$CONC" --rps "$LINES_HALF" --total "$LINES_TOTAL"
