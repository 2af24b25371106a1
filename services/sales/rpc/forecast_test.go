package rpc_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/crmcycle/crm/pkg/servicetest"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// TestForecastMatchesAnIndependentComputation drives generated deals through creation,
// edits, moves, wins and losses, then checks every period's forecast (kept as counters by the
// writes) against a computation from the deals' final states.
func TestForecastMatchesAnIndependentComputation(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	product := sys.catalog.add(tenant, "FC", "Forecast", productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME)
	_, contact, _ := sys.dealParties(t, key, "forecast@example.com")
	rng := rand.New(rand.NewPCG(5, 2026))
	owners := []string{"ada", "bob", "cy"}
	open := []string{"PROSPECTING", "QUALIFICATION", "PROPOSAL", "NEGOTIATION"}
	randomDate := func() string { return fmt.Sprintf("2026-%02d-%02d", 6+rng.IntN(7), 1+rng.IntN(28)) }
	randomAmount := func() string {
		return fmt.Sprintf(`{"currencyCode":"EUR","units":"%d","nanos":%d}`, 100+rng.IntN(10000), rng.IntN(1_000_000_000))
	}
	for range 40 {
		id := str(sys.newDeal(t, key, contact, fmt.Sprintf(`,"ownerId":%q,"closeDate":%q,"amount":%s`,
			owners[rng.IntN(len(owners))], randomDate(), randomAmount())), "id")
		path := "/v1/opportunities/" + id
		for range rng.IntN(4) {
			sys.OK(t, http.MethodPost, path+":moveStage", key, fmt.Sprintf(`{"stage":%q}`, open[rng.IntN(len(open))]))
		}
		if rng.IntN(3) == 0 {
			sys.OK(t, http.MethodPatch, path+"?updateMask=ownerId,closeDate,amount", key, fmt.Sprintf(`{"ownerId":%q,"closeDate":%q,"amount":%s}`,
				owners[rng.IntN(len(owners))], randomDate(), randomAmount()))
		}
		switch rng.IntN(5) {
		case 0:
			sys.OK(t, http.MethodPost, path+"/lineItems", key, fmt.Sprintf(`{"productId":%q,"quantity":%d,"discountPercent":%d}`, product, 1+rng.IntN(50), rng.IntN(30)))
			sys.OK(t, http.MethodPost, path+":win", key, `{}`)
		case 1:
			sys.OK(t, http.MethodPost, path+":lose", key, `{"reason":"generated"}`)
		}
	}

	client, ctx := sys.sales(key)
	var deals []*salesv1.Opportunity
	for token := ""; ; {
		resp, err := client.ListOpportunities(ctx, &salesv1.ListOpportunitiesRequest{PageSize: 7, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		deals = append(deals, resp.GetOpportunities()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(deals) != 40 {
		t.Fatalf("listed %d deals, want 40", len(deals))
	}
	want := independentForecasts(deals)
	if len(want) < 4 {
		t.Fatalf("the generated deals cover only %d periods", len(want))
	}
	for period, expected := range want {
		resp, err := client.GetForecast(ctx, &salesv1.GetForecastRequest{Period: period})
		if err != nil {
			t.Fatal(err)
		}
		if diff := gocmp.Diff(expected, resp.GetForecast(), protocmp.Transform(), cmpopts.EquateApprox(0, 1e-9)); diff != "" {
			t.Errorf("forecast %s (-independent +served):\n%s", period, diff)
		}
	}
	one, err := client.GetForecast(ctx, &salesv1.GetForecastRequest{Period: "2026-Q3", OwnerId: "bob"})
	if err != nil || len(one.GetForecast().GetRows()) > 1 || (len(one.GetForecast().GetRows()) == 1 && one.GetForecast().GetRows()[0].GetOwnerId() != "bob") {
		t.Fatalf("bob's forecast = %v, %v", one, err)
	}
	sys.Fails(t, http.MethodGet, "/v1/forecast?period=2026-Q5", key, "", http.StatusBadRequest, "INVALID_ARGUMENT")
}

// independentForecasts computes each period's forecast from the deals themselves, by the rules
// of the forecast: open deals by category at their close date, won and lost deals at the date
// they closed.
func independentForecasts(deals []*salesv1.Opportunity) map[string]*salesv1.Forecast {
	type sums struct{ pipeline, weighted, best, commit, won, wonCount, lostCount, cycle int64 }
	type rowKey struct{ period, owner string }
	rows := map[rowKey]*sums{}
	for _, d := range deals {
		day, _ := time.Parse(time.DateOnly, d.GetCloseDate())
		amount := d.GetAmount().GetUnits()*1_000_000_000 + int64(d.GetAmount().GetNanos())
		for _, period := range []string{day.Format("2006-01"), fmt.Sprintf("%d-Q%d", day.Year(), (int(day.Month())-1)/3+1)} {
			k := rowKey{period, d.GetOwnerId()}
			if rows[k] == nil {
				rows[k] = &sums{}
			}
			s := rows[k]
			switch d.GetStatus() {
			case salesv1.OpportunityStatus_OPPORTUNITY_STATUS_WON:
				s.won += amount
				s.best += amount
				s.commit += amount
				s.wonCount++
				s.cycle += int64(d.GetCloseTime().AsTime().Sub(d.GetCreateTime().AsTime()).Seconds())
			case salesv1.OpportunityStatus_OPPORTUNITY_STATUS_LOST:
				s.lostCount++
			default:
				s.pipeline += amount
				s.weighted += amount * int64(d.GetProbability()) / 100
				switch d.GetForecastCategory() {
				case salesv1.ForecastCategory_FORECAST_CATEGORY_COMMIT:
					s.commit += amount
					s.best += amount
				case salesv1.ForecastCategory_FORECAST_CATEGORY_BEST_CASE:
					s.best += amount
				}
			}
		}
	}
	money := func(n int64) *typev1.Money {
		return &typev1.Money{CurrencyCode: "EUR", Units: n / 1_000_000_000, Nanos: int32(n % 1_000_000_000)}
	}
	out := map[string]*salesv1.Forecast{}
	for k, s := range rows {
		f := out[k.period]
		if f == nil {
			f = &salesv1.Forecast{Period: k.period}
			out[k.period] = f
		}
		row := &salesv1.ForecastRow{OwnerId: k.owner, CurrencyCode: "EUR", Pipeline: money(s.pipeline), WeightedPipeline: money(s.weighted),
			BestCase: money(s.best), Commit: money(s.commit), ClosedWon: money(s.won), WonCount: s.wonCount, LostCount: s.lostCount}
		if s.wonCount+s.lostCount > 0 {
			row.WinRate = float64(s.wonCount) / float64(s.wonCount+s.lostCount)
		}
		if s.wonCount > 0 {
			row.AverageSalesCycleDays = float64(s.cycle) / float64(s.wonCount) / 86400
		}
		f.Rows = append(f.Rows, row)
	}
	for _, f := range out {
		slices.SortFunc(f.Rows, func(a, b *salesv1.ForecastRow) int { return cmp.Compare(a.GetOwnerId(), b.GetOwnerId()) })
	}
	return out
}

// TestForecastDefaultsAndSeries: without a period the forecast is the current quarter's (UTC, by
// the service's clock); the series lists consecutive quarters around it, each equal to its own
// forecast.
func TestForecastDefaultsAndSeries(t *testing.T) {
	now := time.Date(2026, 11, 15, 9, 0, 0, 0, time.UTC)
	sys := startSystem(t, func(o *servicetest.Options) { o.Now = func() time.Time { return now } })
	_, key := sys.NewKey(t, "", salesScopes...)
	_, contact, _ := sys.dealParties(t, key, "series@example.com")
	for i, date := range []string{"2026-04-10", "2026-08-01", "2026-10-05", "2026-12-31", "2027-02-14", "2027-06-01"} {
		sys.newDeal(t, key, contact, fmt.Sprintf(`,"closeDate":%q,"amount":{"currencyCode":"EUR","units":"%d"}`, date, 1000*(i+1)))
	}
	client, ctx := sys.sales(key)
	current, err := client.GetForecast(ctx, &salesv1.GetForecastRequest{})
	if err != nil || current.GetForecast().GetPeriod() != "2026-Q4" || len(current.GetForecast().GetRows()) != 1 ||
		current.GetForecast().GetRows()[0].GetPipeline().GetUnits() != 3000+4000 {
		t.Fatalf("forecast without a period = %v, %v; want 2026-Q4 with its two deals", current, err)
	}
	if got := sys.OK(t, http.MethodGet, "/v1/forecast", key, ""); str(got, "period") != "2026-Q4" {
		t.Fatalf("GET /v1/forecast = %v, want the current quarter", got)
	}

	series, err := client.GetForecastSeries(ctx, &salesv1.GetForecastSeriesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var periods []string
	for _, f := range series.GetForecasts() {
		periods = append(periods, f.GetPeriod())
		one, err := client.GetForecast(ctx, &salesv1.GetForecastRequest{Period: f.GetPeriod()})
		if err != nil {
			t.Fatal(err)
		}
		if d := gocmp.Diff(one.GetForecast(), f, protocmp.Transform()); d != "" {
			t.Errorf("series entry %s differs from its forecast:\n%s", f.GetPeriod(), d)
		}
	}
	if want := []string{"2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1"}; !slices.Equal(periods, want) {
		t.Fatalf("default series = %v, want %v", periods, want)
	}
	rest := sys.OK(t, http.MethodGet, "/v1/forecast:series?pastQuarters=0&nextQuarters=2", key, "")
	if fs, _ := rest["forecasts"].([]any); len(fs) != 3 || str(fs[2].(map[string]any), "period") != "2027-Q2" {
		t.Fatalf("series over REST = %v, want 2026-Q4 to 2027-Q2", rest)
	}
	// Zero quarters either side, said explicitly, is the current quarter alone.
	alone := sys.OK(t, http.MethodGet, "/v1/forecast:series?pastQuarters=0&nextQuarters=0", key, "")
	if fs, _ := alone["forecasts"].([]any); len(fs) != 1 || str(fs[0].(map[string]any), "period") != "2026-Q4" {
		t.Fatalf("series of no quarter either side = %v, want 2026-Q4 alone", alone)
	}
	details := sys.Fails(t, http.MethodGet, "/v1/forecast:series?pastQuarters=13", key, "", http.StatusBadRequest, "INVALID_ARGUMENT")
	if !fieldViolation(details, "pastQuarters") {
		t.Fatalf("13 quarters back: details %v, want a violation of past_quarters", details)
	}
}
