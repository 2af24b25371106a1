package rpc_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// salesWorld is one tenant's set of sales records, made over gRPC, for the route tables.
type salesWorld struct {
	account, contact, customer, lead, opportunity, wonOpportunity, order, activity, pipeline, product string
}

// buildSalesWorld creates one of every sales resource of tenant over gRPC (and a product and a
// lead for them in the fakes), asserting each happy path.
func buildSalesWorld(t *testing.T, sys *system, tenant, key string) salesWorld {
	t.Helper()
	c, ctx := sys.sales(key)
	w := salesWorld{product: sys.catalog.add(tenant, "WORLD", "World", productv1.BillingPeriod_BILLING_PERIOD_MONTHLY)}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	acc, err := c.CreateAccount(ctx, &salesv1.CreateAccountRequest{Account: &salesv1.Account{DisplayName: "World", Domain: "world.example"}})
	must(err)
	w.account = acc.GetAccount().GetId()
	con, err := c.CreateContact(ctx, &salesv1.CreateContactRequest{Contact: &salesv1.Contact{Email: "w@world.example", AccountId: w.account}})
	must(err)
	w.contact, w.customer = con.GetContact().GetId(), con.GetContact().GetCustomerId()
	w.lead = sys.leads.add(tenant, &marketingv1.Lead{Email: "lead@world.example", Company: "World Lead"}).GetId()
	p, err := c.CreatePipeline(ctx, &salesv1.CreatePipelineRequest{Pipeline: &salesv1.Pipeline{DisplayName: "World", Stages: []*salesv1.PipelineStage{
		{Id: "OPEN", Probability: 50, ForecastCategory: salesv1.ForecastCategory_FORECAST_CATEGORY_PIPELINE, Outcome: salesv1.StageOutcome_STAGE_OUTCOME_OPEN},
		{Id: "WON", Probability: 100, ForecastCategory: salesv1.ForecastCategory_FORECAST_CATEGORY_CLOSED, Outcome: salesv1.StageOutcome_STAGE_OUTCOME_WON},
		{Id: "LOST", ForecastCategory: salesv1.ForecastCategory_FORECAST_CATEGORY_OMITTED, Outcome: salesv1.StageOutcome_STAGE_OUTCOME_LOST},
	}}})
	must(err)
	w.pipeline = p.GetPipeline().GetId()
	for _, id := range []*string{&w.opportunity, &w.wonOpportunity} {
		o, err := c.CreateOpportunity(ctx, &salesv1.CreateOpportunityRequest{Opportunity: &salesv1.Opportunity{
			DisplayName: "World deal", ContactId: w.contact, CurrencyCode: "EUR", OwnerId: "ada", CloseDate: "2026-08-01"}})
		must(err)
		*id = o.GetOpportunity().GetId()
	}
	_, err = c.AddLineItem(ctx, &salesv1.AddLineItemRequest{OpportunityId: w.wonOpportunity, LineItem: &salesv1.OrderLine{ProductId: w.product, Quantity: 1}})
	must(err)
	won, err := c.WinOpportunity(ctx, &salesv1.WinOpportunityRequest{Id: w.wonOpportunity})
	must(err)
	w.order = won.GetOrder().GetId()
	act, err := c.CreateActivity(ctx, &salesv1.CreateActivityRequest{Activity: &salesv1.Activity{Type: salesv1.ActivityType_ACTIVITY_TYPE_TASK,
		Subject: "World task", OwnerId: "ada", ContactId: w.contact, DueTime: timestamppb.New(time.Now().Add(-time.Hour))}})
	must(err)
	w.activity = act.GetActivity().GetId()
	return w
}

// salesCall is one RPC call and the code it must end with.
type salesCall struct {
	name string
	call func(c salesv1.SalesServiceClient, ctx context.Context) error
	want codes.Code
}

func salesCallsOn(w salesWorld, leadToConvert string) []salesCall {
	missing := "0190a0c1-0000-7000-8000-000000000000"
	ignore := func(_ any, err error) error { return err }
	return []salesCall{
		{"GetAccount", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.GetAccount(ctx, &salesv1.GetAccountRequest{Id: w.account}))
		}, codes.OK},
		{"UpdateAccount", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.UpdateAccount(ctx, &salesv1.UpdateAccountRequest{Account: &salesv1.Account{Id: w.account, Industry: "x"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"industry"}}}))
		}, codes.OK},
		{"DeleteAccount with contacts", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.DeleteAccount(ctx, &salesv1.DeleteAccountRequest{Id: w.account}))
		}, codes.FailedPrecondition},
		{"GetContact", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.GetContact(ctx, &salesv1.GetContactRequest{Id: w.contact}))
		}, codes.OK},
		{"UpdateContact stale", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.UpdateContact(ctx, &salesv1.UpdateContactRequest{Contact: &salesv1.Contact{Id: w.contact, Phone: "1", Etag: "99"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"phone"}}}))
		}, codes.Aborted},
		{"ConvertLead", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.ConvertLead(ctx, &salesv1.ConvertLeadRequest{LeadId: leadToConvert}))
		}, codes.OK},
		{"ConvertLead twice", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.ConvertLead(ctx, &salesv1.ConvertLeadRequest{LeadId: leadToConvert}))
		}, codes.FailedPrecondition},
		{"GetPipeline", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.GetPipeline(ctx, &salesv1.GetPipelineRequest{Id: w.pipeline}))
		}, codes.OK},
		{"UpdatePipeline", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.UpdatePipeline(ctx, &salesv1.UpdatePipelineRequest{Pipeline: &salesv1.Pipeline{Id: w.pipeline, DisplayName: "Renamed"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}}))
		}, codes.OK},
		{"GetOpportunity", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.GetOpportunity(ctx, &salesv1.GetOpportunityRequest{Id: w.opportunity}))
		}, codes.OK},
		{"UpdateOpportunity", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.UpdateOpportunity(ctx, &salesv1.UpdateOpportunityRequest{Opportunity: &salesv1.Opportunity{Id: w.opportunity,
				Amount: &typev1.Money{CurrencyCode: "EUR", Units: 900}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"amount"}}}))
		}, codes.OK},
		{"AddLineItem missing product", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.AddLineItem(ctx, &salesv1.AddLineItemRequest{OpportunityId: w.opportunity, LineItem: &salesv1.OrderLine{ProductId: missing, Quantity: 1}}))
		}, codes.FailedPrecondition},
		{"MoveOpportunityStage", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.MoveOpportunityStage(ctx, &salesv1.MoveOpportunityStageRequest{Id: w.opportunity, Stage: "NEGOTIATION"}))
		}, codes.OK},
		{"WinOpportunity without lines", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.WinOpportunity(ctx, &salesv1.WinOpportunityRequest{Id: w.opportunity}))
		}, codes.FailedPrecondition},
		{"LoseOpportunity won", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.LoseOpportunity(ctx, &salesv1.LoseOpportunityRequest{Id: w.wonOpportunity, Reason: "x"}))
		}, codes.FailedPrecondition},
		{"GetOrder", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.GetOrder(ctx, &salesv1.GetOrderRequest{Id: w.order}))
		}, codes.OK},
		{"CreateOrder", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.CreateOrder(ctx, &salesv1.CreateOrderRequest{Order: &salesv1.Order{CustomerId: w.customer,
				Lines: []*salesv1.OrderLine{{ProductId: w.product, Quantity: 1}}}}))
		}, codes.OK},
		{"GetActivity", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.GetActivity(ctx, &salesv1.GetActivityRequest{Id: w.activity}))
		}, codes.OK},
		{"CompleteActivity", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.CompleteActivity(ctx, &salesv1.CompleteActivityRequest{Id: w.activity}))
		}, codes.OK},
		{"CreateActivity unknown link", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.CreateActivity(ctx, &salesv1.CreateActivityRequest{Activity: &salesv1.Activity{Type: salesv1.ActivityType_ACTIVITY_TYPE_CALL,
				Subject: "x", OwnerId: "ada", OpportunityId: missing}}))
		}, codes.InvalidArgument},
		{"DeleteContact", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.DeleteContact(ctx, &salesv1.DeleteContactRequest{Id: missing}))
		}, codes.NotFound},
		{"GetCustomerValue", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.GetCustomerValue(ctx, &salesv1.GetCustomerValueRequest{CustomerId: w.customer}))
		}, codes.OK},
		{"GetForecast bad period", func(c salesv1.SalesServiceClient, ctx context.Context) error {
			return ignore(c.GetForecast(ctx, &salesv1.GetForecastRequest{Period: "2026"}))
		}, codes.InvalidArgument},
	}
}

func TestOverGRPC(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	w := buildSalesWorld(t, sys, tenant, key)
	c, ctx := sys.sales(key)
	for _, tc := range salesCallsOn(w, w.lead) {
		if got := status.Code(tc.call(c, ctx)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	lists := []func() (int, error){
		func() (int, error) {
			r, err := c.ListAccounts(ctx, &salesv1.ListAccountsRequest{})
			return len(r.GetAccounts()), err
		},
		func() (int, error) {
			r, err := c.ListContacts(ctx, &salesv1.ListContactsRequest{})
			return len(r.GetContacts()), err
		},
		func() (int, error) {
			r, err := c.ListPipelines(ctx, &salesv1.ListPipelinesRequest{})
			return len(r.GetPipelines()), err
		},
		func() (int, error) {
			r, err := c.ListOpportunities(ctx, &salesv1.ListOpportunitiesRequest{})
			return len(r.GetOpportunities()), err
		},
		func() (int, error) {
			r, err := c.ListOrders(ctx, &salesv1.ListOrdersRequest{})
			return len(r.GetOrders()), err
		},
		func() (int, error) {
			r, err := c.ListActivities(ctx, &salesv1.ListActivitiesRequest{})
			return len(r.GetActivities()), err
		},
	}
	for i, list := range lists {
		if n, err := list(); err != nil || n == 0 {
			t.Errorf("list %d: %d items, %v", i, n, err)
		}
	}
	f, err := c.GetForecast(ctx, &salesv1.GetForecastRequest{Period: "2026-Q3"})
	if err != nil || len(f.GetForecast().GetRows()) == 0 {
		t.Errorf("forecast = %v, %v", f, err)
	}
	_, err = c.ListOverdueTasks(ctx, &salesv1.ListOverdueTasksRequest{OwnerId: "ada", PageToken: "forged"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("forged page token: %v", err)
	}
	readOnly := sys.OK(t, http.MethodGet, "/v1/accounts/"+w.account, key, "")
	if str(readOnly, "industry") != "x" {
		t.Errorf("the gRPC update is not seen over REST: %v", readOnly)
	}
}

// TestTenantIsolation walks every sales route with another tenant's key: what the first
// tenant owns is NOT_FOUND, and its lists and forecast are empty.
func TestTenantIsolation(t *testing.T) {
	sys := startSystem(t)
	tenant, key := sys.NewKey(t, "", salesScopes...)
	_, foreign := sys.NewKey(t, "", salesScopes...)
	w := buildSalesWorld(t, sys, tenant, key)
	c, ctx := sys.sales(foreign)
	// Everything the first tenant owns (its lead in marketing included) is NOT_FOUND, but for the
	// calls that fail on their input whoever asks, and a direct order for a customer this tenant
	// does not know.
	notNotFound := map[string]codes.Code{
		"CreateActivity unknown link": codes.InvalidArgument, "GetForecast bad period": codes.InvalidArgument,
	}
	for _, tc := range salesCallsOn(w, w.lead) {
		want, ok := notNotFound[tc.name]
		if !ok {
			want = codes.NotFound
		}
		if got := status.Code(tc.call(c, ctx)); got != want {
			t.Errorf("%s with a foreign key: %v, want %v", tc.name, got, want)
		}
	}
	accounts, _ := c.ListAccounts(ctx, &salesv1.ListAccountsRequest{})
	contacts, _ := c.ListContacts(ctx, &salesv1.ListContactsRequest{})
	pipelines, _ := c.ListPipelines(ctx, &salesv1.ListPipelinesRequest{})
	opps, _ := c.ListOpportunities(ctx, &salesv1.ListOpportunitiesRequest{})
	orders, _ := c.ListOrders(ctx, &salesv1.ListOrdersRequest{})
	acts, _ := c.ListActivities(ctx, &salesv1.ListActivitiesRequest{})
	overdue, _ := c.ListOverdueTasks(ctx, &salesv1.ListOverdueTasksRequest{OwnerId: "ada"})
	forecast, _ := c.GetForecast(ctx, &salesv1.GetForecastRequest{Period: "2026-Q3"})
	if len(accounts.GetAccounts())+len(contacts.GetContacts())+len(opps.GetOpportunities())+len(orders.GetOrders())+
		len(acts.GetActivities())+len(overdue.GetActivities())+len(forecast.GetForecast().GetRows()) != 0 || len(pipelines.GetPipelines()) != 1 {
		t.Fatalf("a foreign tenant sees records: %v %v %v %v %v %v %v", accounts, contacts, opps, orders, acts, overdue, forecast)
	}
	// Unique values are per tenant: the foreign tenant may use the same domain and e-mail.
	if _, err := c.CreateAccount(ctx, &salesv1.CreateAccountRequest{Account: &salesv1.Account{DisplayName: "Mine", Domain: "world.example"}}); err != nil {
		t.Fatalf("same domain in another tenant: %v", err)
	}
	if _, err := c.CreateContact(ctx, &salesv1.CreateContactRequest{Contact: &salesv1.Contact{Email: "w@world.example"}}); err != nil {
		t.Fatalf("same e-mail in another tenant: %v", err)
	}
	// A page token of one tenant is refused for another.
	first, err := sys.salesClientList(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListOpportunities(ctx, &salesv1.ListOpportunitiesRequest{PageSize: 1, PageToken: first}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a foreign page token: %v, want INVALID_ARGUMENT", err)
	}
	// Over REST too, for a sample of routes.
	sys.Fails(t, http.MethodGet, "/v1/opportunities/"+w.opportunity, foreign, "", http.StatusNotFound, "NOT_FOUND")
	sys.Fails(t, http.MethodPost, "/v1/opportunities/"+w.opportunity+":win", foreign, `{}`, http.StatusNotFound, "NOT_FOUND")
	sys.Fails(t, http.MethodPost, "/v1/leads/"+w.lead+":convert", foreign, `{}`, http.StatusNotFound, "NOT_FOUND")
}

// salesClientList returns the first page token of a one-item opportunity list of key's tenant.
func (s *system) salesClientList(key string) (string, error) {
	c, ctx := s.sales(key)
	r, err := c.ListOpportunities(ctx, &salesv1.ListOpportunitiesRequest{PageSize: 1})
	return r.GetNextPageToken(), err
}
