# bench/cases/sales.sh, sourced by bench/run.sh (g): sales' two cross-service writes, ConvertLead
# (reads the lead from marketing) and AddLineItem (prices the line through product), each at
# saturation (a ratio to the health baseline) and at half of it (p50/p99). Each conversion needs a
# lead nobody converted yet and an opportunity takes at most 100 lines, so the runs are bounded by
# call count (--total) over a pool, and ghz sends the pool's messages round robin. measure_quiet may
# run a case again (a noisy machine, BENCH_FORCE_RETRY): every run, first or again, gets a pool of
# its own (--prepare), made before the run and outside what it measures.

SALES_CALLS="${BENCH_SALES_CALLS:-2000}" # ConvertLead calls per run, each of a lead of its own
SALES_DEALS=60                           # new opportunities an AddLineItem run spreads its lines over
SALES_LINES=40                           # lines each deal gets in a run (a deal takes at most 100)
SALES_POOLS=0                            # pools made so far: their e-mails are unique per pool

sales_pool() { # sales_pool N PREFIX: captures N leads over REST (16 at a time), one id a line
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

SALES_PRODUCT="$(curl -fsS -X POST "$HTTP_URL/v1/products" -H "Authorization: Bearer $API_KEY" -d '{"sku":"SALES-'"$RUN_ID"'",
  "displayName":"Sales bench","billingPeriod":"BILLING_PERIOD_MONTHLY","price":{"currencyCode":"EUR","units":"10"}}' | sales_json id)" ||
  die "could not create the sales bench product"
sales_fresh_leads() { # sales_fresh_leads ATTEMPT: $WORK/convert.json, SALES_CALLS leads nobody converted
  SALES_POOLS=$((SALES_POOLS + 1))
  log "(g) sales: capturing $SALES_CALLS leads to convert (attempt $1 of the run)"
  sales_pool "$SALES_CALLS" "convert-$RUN_ID-$SALES_POOLS" | sales_data '{"lead_id":"%s"}' >"$WORK/convert.json" ||
    die "could not capture the sales bench's leads"
}
sales_fresh_deals() { # sales_fresh_deals ATTEMPT: $WORK/lines.json, a line for each of SALES_DEALS new deals
  SALES_POOLS=$((SALES_POOLS + 1))
  log "(g) sales: opening $SALES_DEALS deals to add lines to (attempt $1 of the run)"
  sales_pool "$SALES_DEALS" "deal-$RUN_ID-$SALES_POOLS" | while read -r lead; do
    curl -fsS -X POST "$HTTP_URL/v1/leads/$lead:convert" -H "Authorization: Bearer $API_KEY" \
      -d '{"opportunity":{"displayName":"Bench deal","currencyCode":"EUR"}}' | sales_json opportunity id
  done | sales_data '{"opportunity_id":"%s","line_item":{"product_id":"'"$SALES_PRODUCT"'","quantity":1}}' >"$WORK/lines.json" ||
    die "could not open the sales bench's deals"
}

bench_case --prepare sales_fresh_leads convert-lead "gRPC ConvertLead (marketing read, one write)" \
  sales_run ConvertLead "$WORK/convert.json" --concurrency "$CONC" --total "$SALES_CALLS"
CONVERT_HALF="$(json_field "$WORK/case-convert-lead.out" rps | awk '{ h = int($1 / 2); print (h < 1 ? 1 : h) }')"
bench_half_case --prepare sales_fresh_leads convert-lead-half "gRPC ConvertLead at half saturation ($CONVERT_HALF/s)" \
  sales_run ConvertLead "$WORK/convert.json" --concurrency "$CONC" --rps "$CONVERT_HALF" --total "$SALES_CALLS"

LINES_TOTAL=$((SALES_DEALS * SALES_LINES))
bench_case --prepare sales_fresh_deals add-line-item "gRPC AddLineItem (product quote, one write)" \
  sales_run AddLineItem "$WORK/lines.json" --concurrency "$CONC" --total "$LINES_TOTAL"
LINES_HALF="$(json_field "$WORK/case-add-line-item.out" rps | awk '{ h = int($1 / 2); print (h < 1 ? 1 : h) }')"
bench_half_case --prepare sales_fresh_deals add-line-item-half "gRPC AddLineItem at half saturation ($LINES_HALF/s)" \
  sales_run AddLineItem "$WORK/lines.json" --concurrency "$CONC" --rps "$LINES_HALF" --total "$LINES_TOTAL"
