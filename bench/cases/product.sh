# bench/cases/product.sh, sourced by bench/run.sh (g): the product service's GetProduct (a read by
# id) and RecordUsage (a counted write), each against the same-run health baseline (a).

product_call() { # product_call METHOD DATA: ghz at the run's concurrency and duration
  "$GHZ" "${GHZ_COMMON[@]}" --call "crm.product.v1.ProductService/$1" --data "$2" --metadata "$AUTH_MD" \
    --concurrency "$CONC" --duration "$DURATION" "$GRPC_ADDR"
}
product_rest() { # product_rest METHOD PATH [BODY]: the JSON answer, or nothing on an error status
  curl -fsS -X "$1" "$HTTP_URL$2" -H "Authorization: Bearer $API_KEY" ${3:+-d "$3"} 2>/dev/null
}
json_get() { # json_get KEY...: the value at that path of the JSON on stdin (list indexes as numbers)
  python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$@"
}

BENCH_PRODUCT="$(product_rest POST /v1/products '{"sku":"BENCH-'"$RUN_ID"'","displayName":"Bench product",
  "billingPeriod":"BILLING_PERIOD_MONTHLY","price":{"currencyCode":"EUR","units":"10"},"features":["reports"]}' |
  json_get id)" || die "could not create the bench product"
bench_case get-product "gRPC GetProduct" product_call GetProduct '{"id":"'"$BENCH_PRODUCT"'"}'

# RecordUsage needs a subscription, and only a placed order makes one: a sales contact (the
# customer) and a direct order, through the sales service.
BENCH_CUSTOMER="$(product_rest POST /v1/contacts '{"email":"bench-'"$RUN_ID"'@example.com"}' | json_get customerId)" || true
if [[ -n "$BENCH_CUSTOMER" ]] && product_rest POST /v1/orders '{"customerId":"'"$BENCH_CUSTOMER"'","currencyCode":"EUR",
  "lines":[{"productId":"'"$BENCH_PRODUCT"'","quantity":"50"}]}' >/dev/null; then
  BENCH_SUBSCRIPTION=""
  for _ in $(seq 1 100); do
    BENCH_SUBSCRIPTION="$(product_rest GET "/v1/subscriptions?filter=customer_id%3D%22$BENCH_CUSTOMER%22" |
      json_get subscriptions 0 id 2>/dev/null)" && break
    sleep 0.1
  done
  [[ -n "$BENCH_SUBSCRIPTION" ]] || die "the bench order made no subscription within 10s"
  bench_case record-usage "gRPC RecordUsage" product_call RecordUsage \
    '{"subscription_id":"'"$BENCH_SUBSCRIPTION"'","usage_record":{"feature":"reports","quantity":1,"user_id":"u{{.WorkerID}}"}}'
else
  log "(g) RecordUsage skipped: the sales service placed no order (POST /v1/contacts, /v1/orders), so there is no subscription"
fi
