package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// demoSeed is the population `crm dev --demo` drives through the real gRPC APIs, as a client
// would: nothing is written to Redis behind the services' backs, so the funnel, forecast and
// support statistics it leaves are what the services themselves computed.
type demoSeed struct {
	ctx       context.Context // carries the API key
	out       io.Writer
	rng       *rand.Rand
	now       time.Time
	marketing marketingv1.MarketingServiceClient

	campaigns []*marketingv1.Campaign
	leads     []*marketingv1.Lead
}

// demoSize is how many leads the demo captures.
const demoSize = 300

// seedDemo populates the API key's tenant through the gRPC server at addr.
func seedDemo(ctx context.Context, addr, key string, out io.Writer) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	d := &demoSeed{
		ctx:       metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key),
		out:       out,
		rng:       rand.New(rand.NewPCG(2026, 11)), // the same population on every run
		now:       time.Now(),
		marketing: marketingv1.NewMarketingServiceClient(conn),
	}
	start := time.Now()
	for _, step := range []struct {
		name string
		run  func() error
	}{
		{"campaigns", d.seedCampaigns},
		{"leads", d.seedLeads},
	} {
		if err := step.run(); err != nil {
			return fmt.Errorf("demo: %s: %w", step.name, err)
		}
	}
	fmt.Fprintf(out, "==> demo: seeded %d campaigns and %d leads in %s\n",
		len(d.campaigns), len(d.leads), time.Since(start).Round(time.Millisecond))
	return nil
}

func (d *demoSeed) seedCampaigns() error {
	for _, c := range []struct {
		name    string
		channel typev1.Channel
		budget  int64
	}{
		{"Spring newsletter", typev1.Channel_CHANNEL_EMAIL, 2_000},
		{"Search ads Q4", typev1.Channel_CHANNEL_ADS, 15_000},
		{"State of CRM report", typev1.Channel_CHANNEL_CONTENT, 5_000},
		{"Customer summit", typev1.Channel_CHANNEL_EVENT, 25_000},
	} {
		created, err := d.marketing.CreateCampaign(d.ctx, &marketingv1.CreateCampaignRequest{Campaign: &marketingv1.Campaign{
			DisplayName: c.name,
			Channel:     c.channel,
			Budget:      &typev1.Money{CurrencyCode: "EUR", Units: c.budget},
			StartTime:   timestamppb.New(d.now.AddDate(0, -2, 0)),
			EndTime:     timestamppb.New(d.now.AddDate(0, 2, 0)),
		}})
		if err != nil {
			return err
		}
		launched, err := d.marketing.LaunchCampaign(d.ctx, &marketingv1.LaunchCampaignRequest{Id: created.GetCampaign().GetId()})
		if err != nil {
			return err
		}
		d.campaigns = append(d.campaigns, launched.GetCampaign())
	}
	return nil
}

var (
	demoGivenNames  = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Radia", "Linus", "Frances", "John"}
	demoFamilyNames = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Perlman", "Torvalds", "Allen", "Backus"}
	demoCompanies   = []string{"Initech", "Globex", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises", "Acme", "Soylent", ""}
)

func (d *demoSeed) seedLeads() error {
	for i := range demoSize {
		campaign := d.campaigns[d.rng.IntN(len(d.campaigns))]
		given := demoGivenNames[d.rng.IntN(len(demoGivenNames))]
		family := demoFamilyNames[d.rng.IntN(len(demoFamilyNames))]
		lead := &marketingv1.Lead{
			Email:      fmt.Sprintf("%s.%s.%d@example.com", given, family, i),
			GivenName:  given,
			FamilyName: family,
			Company:    demoCompanies[d.rng.IntN(len(demoCompanies))],
			Channel:    campaign.GetChannel(),
			CampaignId: campaign.GetId(),
			Consent: []*marketingv1.Consent{{
				Channel: typev1.Channel_CHANNEL_EMAIL, Granted: d.rng.IntN(10) < 7,
			}},
		}
		captured, err := d.marketing.CaptureLead(d.ctx, &marketingv1.CaptureLeadRequest{Lead: lead})
		if err != nil {
			return err
		}
		d.leads = append(d.leads, captured.GetLead())
	}
	return nil
}
