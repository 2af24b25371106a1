package sales

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/money"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// Forecast metrics, counted per period, owner and currency as opportunities change. Amounts are
// in nano units of the currency; the weighted pipeline is amount x probability / 100 per deal.
const (
	metricPipeline     = "pipeline"
	metricWeighted     = "weighted"
	metricBestCase     = "best_case"
	metricCommit       = "commit"
	metricWon          = "won"
	metricWonCount     = "won_count"
	metricLostCount    = "lost_count"
	metricCycleSeconds = "cycle_seconds"
)

func timestampOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t.UTC()) }

// Periods are the month and quarter of a close date "YYYY-MM-DD": "2026-07" and "2026-Q3".
func Periods(closeDate string) []string {
	d, err := time.Parse(time.DateOnly, closeDate)
	if err != nil {
		return nil
	}
	return []string{d.Format("2006-01"), fmt.Sprintf("%d-Q%d", d.Year(), (int(d.Month())+2)/3)}
}

// contribution is what one deal adds to the forecast counters of its close date's periods.
// The counters are int64 nano units: an amount beyond them is ErrAmountTooLarge, never a wrap.
func contribution(o *Opportunity) ([]ForecastCounter, error) {
	if o == nil {
		return nil, nil
	}
	amount, err := money.Int64Nanos(o.GetAmount())
	if err != nil {
		return nil, ErrAmountTooLarge
	}
	weighted, err := money.Percent(o.GetAmount(), o.GetProbability())
	if err != nil {
		return nil, err
	}
	values := map[string]int64{}
	switch o.GetStatus() {
	case salesv1.OpportunityStatus_OPPORTUNITY_STATUS_OPEN:
		category := o.GetForecastCategory()
		if category == salesv1.ForecastCategory_FORECAST_CATEGORY_OMITTED {
			break
		}
		values[metricPipeline] = amount
		// The weighted amount is at most the amount, so it fits too.
		values[metricWeighted], _ = money.Int64Nanos(weighted)
		if category == salesv1.ForecastCategory_FORECAST_CATEGORY_BEST_CASE || category == salesv1.ForecastCategory_FORECAST_CATEGORY_COMMIT {
			values[metricBestCase] = amount
		}
		if category == salesv1.ForecastCategory_FORECAST_CATEGORY_COMMIT {
			values[metricCommit] = amount
		}
	case salesv1.OpportunityStatus_OPPORTUNITY_STATUS_WON:
		values[metricWon], values[metricBestCase], values[metricCommit] = amount, amount, amount
		values[metricWonCount] = 1
		values[metricCycleSeconds] = int64(o.GetCloseTime().AsTime().Sub(o.GetCreateTime().AsTime()).Seconds())
	case salesv1.OpportunityStatus_OPPORTUNITY_STATUS_LOST:
		values[metricLostCount] = 1
	}
	var out []ForecastCounter
	for _, period := range Periods(o.GetCloseDate()) {
		for metric, v := range values {
			out = append(out, ForecastCounter{Period: period, Owner: o.GetOwnerId(), Currency: o.GetCurrencyCode(), Metric: metric, Value: v})
		}
	}
	return out, nil
}

// forecastDelta is the change of the forecast counters when prev becomes next (either may be nil).
func forecastDelta(prev, next *Opportunity) ([]ForecastCounter, error) {
	type counter struct{ period, owner, currency, metric string }
	sum := map[counter]int64{}
	before, err := contribution(prev)
	if err != nil {
		return nil, err
	}
	after, err := contribution(next)
	if err != nil {
		return nil, err
	}
	for _, c := range before {
		sum[counter{c.Period, c.Owner, c.Currency, c.Metric}] -= c.Value
	}
	for _, c := range after {
		sum[counter{c.Period, c.Owner, c.Currency, c.Metric}] += c.Value
	}
	var out []ForecastCounter
	for k, v := range sum {
		if v != 0 {
			out = append(out, ForecastCounter{Period: k.period, Owner: k.owner, Currency: k.currency, Metric: k.metric, Value: v})
		}
	}
	slices.SortFunc(out, func(a, b ForecastCounter) int {
		return cmp.Or(cmp.Compare(a.Period, b.Period), cmp.Compare(a.Owner, b.Owner), cmp.Compare(a.Currency, b.Currency), cmp.Compare(a.Metric, b.Metric))
	})
	return out, nil
}

// Forecasts are the forecast use case.
type Forecasts struct{ Env }

// NewForecasts returns the use case.
func NewForecasts(env Env) *Forecasts { return &Forecasts{env} }

// quarterOf names the quarter t falls in, in UTC: "2026-Q4".
func quarterOf(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())+2)/3)
}

// Series returns the forecasts of past quarters before the current one, the current one and next
// quarters after it, oldest first.
func (f *Forecasts) Series(ctx context.Context, tenant string, past, next int, ownerID string) ([]*salesv1.Forecast, error) {
	now := f.Now().UTC()
	current := time.Date(now.Year(), (now.Month()-1)/3*3+1, 1, 0, 0, 0, 0, time.UTC)
	var out []*salesv1.Forecast
	for i := -past; i <= next; i++ {
		fc, err := f.Get(ctx, tenant, quarterOf(current.AddDate(0, 3*i, 0)), ownerID)
		if err != nil {
			return nil, err
		}
		out = append(out, fc)
	}
	return out, nil
}

// Get returns a period's forecast from its counters (one read, whatever the number of deals),
// for every owner or only ownerID; an empty period is the current quarter.
func (f *Forecasts) Get(ctx context.Context, tenant, period, ownerID string) (*salesv1.Forecast, error) {
	if period == "" {
		period = quarterOf(f.Now())
	}
	counters, err := f.Store.ForecastTotals(ctx, tenant, period)
	if err != nil {
		return nil, err
	}
	type row struct{ owner, currency string }
	values := map[row]map[string]int64{}
	for _, c := range counters {
		if ownerID != "" && c.Owner != ownerID {
			continue
		}
		r := row{c.Owner, c.Currency}
		if values[r] == nil {
			values[r] = map[string]int64{}
		}
		values[r][c.Metric] += c.Value
	}
	out := &salesv1.Forecast{Period: period}
	for r, v := range values {
		if !slices.ContainsFunc(slices.Collect(maps.Values(v)), func(n int64) bool { return n != 0 }) {
			continue // every deal of the row moved away
		}
		fr := &salesv1.ForecastRow{
			OwnerId: r.owner, CurrencyCode: r.currency,
			Pipeline: money.FromInt64Nanos(r.currency, v[metricPipeline]), WeightedPipeline: money.FromInt64Nanos(r.currency, v[metricWeighted]),
			BestCase: money.FromInt64Nanos(r.currency, v[metricBestCase]), Commit: money.FromInt64Nanos(r.currency, v[metricCommit]),
			ClosedWon: money.FromInt64Nanos(r.currency, v[metricWon]), WonCount: v[metricWonCount], LostCount: v[metricLostCount],
		}
		if closed := fr.WonCount + fr.LostCount; closed > 0 {
			fr.WinRate = float64(fr.WonCount) / float64(closed)
		}
		if fr.WonCount > 0 {
			fr.AverageSalesCycleDays = float64(v[metricCycleSeconds]) / float64(fr.WonCount) / 86400
		}
		out.Rows = append(out.Rows, fr)
	}
	slices.SortFunc(out.Rows, func(a, b *salesv1.ForecastRow) int {
		return cmp.Or(cmp.Compare(a.GetOwnerId(), b.GetOwnerId()), cmp.Compare(a.GetCurrencyCode(), b.GetCurrencyCode()))
	})
	return out, nil
}
