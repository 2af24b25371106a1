package product

import (
	"github.com/crmcycle/crm/pkg/filter"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
)

// The lists' filters: what each serves and how the terms become its index.
var (
	// productList: one catalog index per field; a name or SKU search alone or with one of the others.
	productList = filter.List{
		Fields: []filter.Field{
			{Name: "category", Ops: []filter.Operator{filter.Equal}},
			{Name: "active", Ops: []filter.Operator{filter.Equal, filter.NotEqual}},
			{Name: "billing_period", Ops: []filter.Operator{filter.Equal}},
			{Name: "display_name", Ops: []filter.Operator{filter.Equal, filter.Has}},
			{Name: "sku", Ops: []filter.Operator{filter.Has}},
		},
		Pairs: [][2]string{
			{"display_name", "category"}, {"display_name", "active"}, {"display_name", "billing_period"},
			{"sku", "category"}, {"sku", "active"}, {"sku", "billing_period"},
		},
	}
	subscriptionList = filter.List{
		Fields: []filter.Field{{Name: "customer_id", Ops: []filter.Operator{filter.Equal}}, {Name: "status", Ops: []filter.Operator{filter.Equal}}},
		Pairs:  [][2]string{{"customer_id", "status"}},
	}
)

// ParseProductFilter maps a ListProducts filter to the catalog index that answers it.
func ParseProductFilter(text string) (ProductIndex, error) {
	terms, err := productList.Parse(text)
	if err != nil || len(terms) == 0 {
		return ProductIndex{}, err
	}
	var ix ProductIndex
	for _, t := range terms {
		switch t.Field {
		case "category":
			ix.Category, err = t.Text()
		case "active":
			var active bool
			active, err = t.Bool()
			ix.Active = &active
		case "billing_period":
			var v int32
			v, err = t.Enum(productv1.BillingPeriod_value)
			ix.BillingPeriod = productv1.BillingPeriod(v)
		case "display_name":
			ix.Name, err = t.Search()
		case "sku":
			ix.SKU, err = t.Search()
		}
		if err != nil {
			return ProductIndex{}, err
		}
	}
	return ix, nil
}

func ParseSubscriptionFilter(text string) (SubscriptionIndex, error) {
	terms, err := subscriptionList.Parse(text)
	if err != nil {
		return SubscriptionIndex{}, err
	}
	var ix SubscriptionIndex
	for _, t := range terms {
		var v int32
		switch t.Field {
		case "customer_id":
			ix.CustomerID, err = t.ID()
		case "status":
			v, err = t.Enum(productv1.SubscriptionStatus_value)
			ix.Status = productv1.SubscriptionStatus(v)
		}
		if err != nil {
			return SubscriptionIndex{}, err
		}
	}
	return ix, nil
}
