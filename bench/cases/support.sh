# bench/cases/support.sh, sourced by bench/run.sh (g): the support service's CreateTicket about a
# product (its write plus the entitlement call to the product service) and AddComment (a public
# reply to one ticket), each against the same-run health baseline (a).

support_call() { # support_call METHOD DATA: ghz at the run's concurrency and duration
  "$GHZ" "${GHZ_COMMON[@]}" --call "crm.support.v1.SupportService/$1" --data "$2" --metadata "$AUTH_MD" \
    --concurrency "$CONC" --duration "$DURATION" "$GRPC_ADDR"
}
support_rest() { # support_rest METHOD PATH [BODY]: the JSON answer, or nothing on an error status
  curl -fsS -X "$1" "$HTTP_URL$2" -H "Authorization: Bearer $API_KEY" ${3:+-d "$3"} 2>/dev/null
}
support_field() { # support_field KEY...: the value at that path of the JSON on stdin
  python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$@"
}

# An entitled customer: a sales contact (a new customer id) whose order for a monthly product
# makes the subscription CheckEntitlement finds (product consumes sales.order.placed).
SUPPORT_PRODUCT="$(support_rest POST /v1/products '{"sku":"SUPPORT-'"$RUN_ID"'","displayName":"Support bench",
  "billingPeriod":"BILLING_PERIOD_MONTHLY","price":{"currencyCode":"EUR","units":"10"}}' | support_field id)" ||
  die "could not create the support bench product"
SUPPORT_ENTITLED=""
SUPPORT_CUSTOMER="$(python3 -c 'import uuid; print(uuid.uuid4())')"
if SUPPORT_ACCOUNT="$(support_rest POST /v1/accounts '{"displayName":"Support bench '"$RUN_ID"'"}' | support_field id)" &&
  SUPPORT_CUSTOMER="$(support_rest POST /v1/contacts '{"accountId":"'"$SUPPORT_ACCOUNT"'","email":"support-'"$RUN_ID"'@bench.example"}' |
    support_field customerId)" &&
  support_rest POST /v1/orders '{"customerId":"'"$SUPPORT_CUSTOMER"'","currencyCode":"EUR",
    "lines":[{"productId":"'"$SUPPORT_PRODUCT"'","quantity":"1"}]}' >/dev/null; then
  for _ in $(seq 1 100); do
    [[ "$(support_rest GET "/v1/customers/$SUPPORT_CUSTOMER/entitlements/$SUPPORT_PRODUCT" | support_field entitled 2>/dev/null)" == True ]] &&
      SUPPORT_ENTITLED=1 && break
    sleep 0.1
  done
fi
if [[ -n "$SUPPORT_ENTITLED" ]]; then
  bench_case create-ticket "gRPC CreateTicket (with the entitlement call)" support_call CreateTicket \
    '{"ticket":{"customer_id":"'"$SUPPORT_CUSTOMER"'","product_id":"'"$SUPPORT_PRODUCT"'","subject":"bench {{.RequestNumber}}","priority":"TICKET_PRIORITY_HIGH"}}'
else
  log "(g) CreateTicket with a product skipped: no order made the bench customer entitled within 10s"
fi

SUPPORT_TICKET="$(support_rest POST /v1/tickets '{"customerId":"'"$SUPPORT_CUSTOMER"'","subject":"bench conversation"}' |
  support_field id)" || die "could not open the support bench ticket"
bench_case add-comment "gRPC AddComment" support_call AddComment \
  '{"ticket_id":"'"$SUPPORT_TICKET"'","comment":{"body":"reply {{.RequestNumber}}"}}'
