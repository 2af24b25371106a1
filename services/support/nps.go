package support

import (
	"context"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/page"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// Nps is the NPS use case.
type Nps struct {
	store     Store
	known     CustomerCheck
	publisher events.Publisher
	now       Clock
}

// NewNps returns the use case over store.
func NewNps(store Store, known CustomerCheck, publisher events.Publisher, now Clock) *Nps {
	return &Nps{store: store, known: known, publisher: publisher, now: now}
}

// npsCategory is the category of a 0-10 score.
func npsCategory(score int32) supportv1.NpsCategory {
	switch {
	case score >= 9:
		return supportv1.NpsCategory_NPS_CATEGORY_PROMOTER
	case score >= 7:
		return supportv1.NpsCategory_NPS_CATEGORY_PASSIVE
	}
	return supportv1.NpsCategory_NPS_CATEGORY_DETRACTOR
}

var npsCounters = map[supportv1.NpsCategory]string{
	supportv1.NpsCategory_NPS_CATEGORY_PROMOTER:  countPromoters,
	supportv1.NpsCategory_NPS_CATEGORY_PASSIVE:   countPassives,
	supportv1.NpsCategory_NPS_CATEGORY_DETRACTOR: countDetractors,
}

// Record stores the answer of a customer marketing's registry has, counts it and emits
// support.nps.recorded.
func (n *Nps) Record(ctx context.Context, tenant string, in *NpsResponse) (*NpsResponse, error) {
	if err := n.known.Check(ctx, tenant, in.GetCustomerId(), "nps_response.customer_id"); err != nil {
		return nil, err
	}
	now := n.now().UTC()
	r := &NpsResponse{
		Id: uuid.Must(uuid.NewV7()).String(), CustomerId: in.GetCustomerId(), Score: in.GetScore(),
		Comment: in.GetComment(), Category: npsCategory(in.GetScore()), CreateTime: timestamppb.New(now),
	}
	_, ev, err := n.publisher.Envelope(ctx, supportv1.EventNpsRecorded.Of(&supportv1.NpsRecorded{
		ResponseId: r.GetId(), CustomerId: r.GetCustomerId(), Score: r.GetScore(), Category: r.GetCategory(),
	}), tenant, r.GetCustomerId(), now)
	if err != nil {
		return nil, err
	}
	if err := n.store.SaveNpsResponse(ctx, tenant, r, Tally{npsCounters[r.GetCategory()]: 1}, ev); err != nil {
		return nil, err
	}
	return r, nil
}

// List returns a page of the tenant's answers, or of one customer's, newest first.
func (n *Nps) List(ctx context.Context, tenant, customer string, p page.Request) (page.Page[*NpsResponse], error) {
	return n.store.ListNpsResponses(ctx, tenant, customer, p)
}
