package sales

import (
	"context"

	"google.golang.org/protobuf/proto"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/batch"
)

// getMany reads resources of kind by id, in order: all, or notFound naming the missing (AIP-231).
func getMany[T interface {
	proto.Message
	comparable
}](ctx context.Context, store Store, tenant, kind string, ids []string, newMsg func() T, notFound *apierr.Error) ([]T, error) {
	typed, msgs := make([]T, len(ids)), make([]proto.Message, len(ids))
	for i := range ids {
		typed[i] = newMsg()
		msgs[i] = typed[i]
	}
	found, err := store.ReadMany(ctx, tenant, kind, ids, msgs)
	if err != nil {
		return nil, err
	}
	var none T
	for i, ok := range found {
		if !ok {
			typed[i] = none
		}
	}
	return batch.All(typed, ids, notFound)
}

// GetAccounts returns accounts by id, in order: all, or ErrAccountNotFound naming the missing.
func (a *Accounts) GetAccounts(ctx context.Context, tenant string, ids []string) ([]*Account, error) {
	return getMany(ctx, a.Store, tenant, "account", ids, func() *Account { return &Account{} }, ErrAccountNotFound)
}

// GetContacts returns contacts by id, in order: all, or ErrContactNotFound naming the missing.
func (a *Accounts) GetContacts(ctx context.Context, tenant string, ids []string) ([]*Contact, error) {
	return getMany(ctx, a.Store, tenant, "contact", ids, func() *Contact { return &Contact{} }, ErrContactNotFound)
}

// GetMany returns deals by id, in order: all, or ErrOpportunityNotFound naming the missing.
func (o *Opportunities) GetMany(ctx context.Context, tenant string, ids []string) ([]*Opportunity, error) {
	return getMany(ctx, o.Store, tenant, "opportunity", ids, func() *Opportunity { return &Opportunity{} }, ErrOpportunityNotFound)
}

// GetMany returns orders by id, in order: all, or ErrOrderNotFound naming the missing.
func (o *Orders) GetMany(ctx context.Context, tenant string, ids []string) ([]*Order, error) {
	return getMany(ctx, o.Store, tenant, "order", ids, func() *Order { return &Order{} }, ErrOrderNotFound)
}

// GetMany returns activities by id, in order: all, or ErrActivityNotFound naming the missing.
func (a *Activities) GetMany(ctx context.Context, tenant string, ids []string) ([]*Activity, error) {
	return getMany(ctx, a.Store, tenant, "activity", ids, func() *Activity { return &Activity{} }, ErrActivityNotFound)
}
