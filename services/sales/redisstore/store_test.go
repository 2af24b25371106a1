package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"

	"github.com/crmcycle/crm/pkg/events"
	"github.com/crmcycle/crm/pkg/keyspace"
	"github.com/crmcycle/crm/pkg/redistest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/sales"
	"github.com/crmcycle/crm/services/sales/redisstore"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// The other services, as the use cases see them: these tests are about the store.
type leadsOf map[string]*marketingv1.Lead

func (l leadsOf) GetLead(_ context.Context, id string) (*marketingv1.Lead, error) {
	if lead, ok := l[id]; ok {
		return lead, nil
	}
	return nil, sales.ErrLeadNotFound
}

type flatPrice struct{}

func (flatPrice) Price(_ context.Context, currency string, lines []*sales.OrderLine) ([]*sales.OrderLine, error) {
	for _, l := range lines {
		l.UnitPrice = &typev1.Money{CurrencyCode: currency, Units: 10}
		l.Total = &typev1.Money{CurrencyCode: currency, Units: 10 * l.GetQuantity()}
	}
	return lines, nil
}

// TestEveryWriteIsOneCommit walks the sales cycle on standalone Redis and on a 3-master cluster:
// every write is exactly one commit script (no CROSSSLOT on the cluster: a tenant's sales keys
// and its event stream share one slot), including the multi-resource ones (conversion, win).
func TestEveryWriteIsOneCommit(t *testing.T) {
	for name, rdb := range map[string]redis.UniversalClient{"standalone": redistest.Client(t), "cluster": redistest.ClusterClient(t)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			keys, err := keyspace.Open(ctx, rdb, 16)
			if err != nil {
				t.Fatal(err)
			}
			validator, err := protovalidate.New()
			if err != nil {
				t.Fatal(err)
			}
			counter := &redistest.Commands{}
			rdb.AddHook(counter)
			env := sales.Env{Store: redisstore.New(rdb, keys), Validator: validator, Now: time.Now,
				Publisher: events.Publisher{Producer: "sales", Propagator: propagation.TraceContext{}}}
			tenant := redistest.Tenant(t)
			lead := &marketingv1.Lead{Id: "0190a0c1-0000-7000-8000-00000000000a", CustomerId: "0190a0c1-0000-7000-8000-00000000000c",
				Email: "ada@example.com", Company: "Engines", Status: marketingv1.LeadStatus_LEAD_STATUS_MARKETING_QUALIFIED}
			opps := sales.NewOpportunities(env, flatPrice{})
			conversions := sales.NewConversions(env, leadsOf{lead.GetId(): lead}, opps)
			accounts := sales.NewAccounts(env)

			// The first run of the script may load it (EVALSHA, then EVAL): warm it up.
			if _, err := accounts.CreateAccount(ctx, tenant, &sales.Account{DisplayName: "Warm-up"}); err != nil {
				t.Fatal(err)
			}
			var account, opp string
			steps := []struct {
				name string
				run  func() error
			}{
				{"convert", func() error {
					a, _, o, err := conversions.Convert(ctx, tenant, sales.ConvertRequest{LeadID: lead.GetId(), Opportunity: &sales.Opportunity{DisplayName: "Deal"}})
					account, opp = a.GetId(), o.GetId()
					return err
				}},
				{"add line item", func() error {
					_, _, err := opps.AddLineItem(ctx, tenant, opp, &sales.OrderLine{ProductId: lead.GetId(), Quantity: 2})
					return err
				}},
				{"move", func() error { _, err := opps.Move(ctx, tenant, opp, "NEGOTIATION", ""); return err }},
				{"win", func() error { _, _, err := opps.Win(ctx, tenant, opp, ""); return err }},
				{"update account", func() error {
					_, err := accounts.UpdateAccount(ctx, tenant, &sales.Account{Id: account, DisplayName: "Engines Ltd", Domain: "engines.example"}, nil)
					return err
				}},
			}
			for _, step := range steps {
				counter.Take()
				if err := step.run(); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				if n := counter.Scripts(); n != 1 {
					t.Errorf("%s ran %d commit scripts, want 1", step.name, n)
				}
			}
			// The refused delete is one script too, and writes nothing.
			counter.Take()
			if err := accounts.DeleteAccount(ctx, tenant, account, ""); !errors.Is(err, sales.ErrAccountHasContacts) {
				t.Fatalf("delete an account with contacts: %v", err)
			}
			if n := counter.Scripts(); n != 1 {
				t.Errorf("refused delete ran %d commit scripts, want 1", n)
			}
			if _, _, _, err := conversions.Convert(ctx, tenant, sales.ConvertRequest{LeadID: lead.GetId()}); !errors.Is(err, sales.ErrLeadAlreadyConverted) {
				t.Fatalf("second conversion: %v", err)
			}
			// The index of contacts by customer: its backfill, a merge's move and an erasure's read
			// keep to the tenant's slot on the cluster too.
			survivor := "0190a0c1-0000-7000-8000-00000000000d"
			if err := env.Store.IndexContactsByCustomer(ctx, tenant); err != nil {
				t.Fatal(err)
			}
			if n, err := env.Store.MoveContacts(ctx, tenant, lead.GetCustomerId(), survivor, 100); err != nil || n != 1 {
				t.Fatalf("move the converted contact: %d %v", n, err)
			}
			if found, _, err := env.Store.ContactsOfCustomer(ctx, tenant, survivor, "", 10); err != nil || len(found) != 1 {
				t.Fatalf("the survivor's contacts: %v %v, want the converted one", found, err)
			}
			forecast, err := sales.NewForecasts(env).Get(ctx, tenant, time.Now().Format("2006-01"), "")
			if err != nil || len(forecast.GetRows()) != 1 || forecast.GetRows()[0].GetClosedWon().GetUnits() != 20 || forecast.GetRows()[0].GetWonCount() != 1 {
				t.Fatalf("forecast after the win = %v, %v; want one win of 20", forecast, err)
			}
		})
	}
}
