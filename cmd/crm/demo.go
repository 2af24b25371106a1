package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
)

// demoSeed is the population `crm dev --demo` drives through the real gRPC APIs, as a client
// would: nothing is written to Redis behind the services' backs, so the funnel, forecast, customer
// values and support statistics it leaves are what the services themselves computed. The leads
// arrive in six monthly waves: with travel (crm dev's demo clock) each wave runs with the
// services' clock set in its month, so orders, lifecycle moves and the funnel by period have half
// a year of history; then the clock returns to now for product usage, tickets and NPS.
type demoSeed struct {
	ctx       context.Context // carries the API key
	out       io.Writer
	rng       *rand.Rand
	now       time.Time
	marketing marketingv1.MarketingServiceClient
	sales     salesv1.SalesServiceClient
	product   productv1.ProductServiceClient
	support   supportv1.SupportServiceClient

	campaigns []*marketingv1.Campaign
	leads     []*marketingv1.Lead
	products  []*productv1.Product
	customers []string // customers who bought
	counts    map[string]int
	// travel sets how far behind the real time the services' clock runs; nil: no time travel.
	travel func(time.Duration)
}

// demoWaveMonths are how many months back each wave of leads arrives, the last in the current
// month. The first lies past the churn window (180 days), so its buyers who never buy again are
// CHURNED by now.
var demoWaveMonths = []int{7, 4, 3, 2, 1, 0}

// demoWaves is how many monthly waves of leads the demo seeds.
var demoWaves = len(demoWaveMonths)

// demoImports is how many people the demo imports without engaging them: they stay SUSPECTs.
const demoImports = 12

// demoImportEmail is the e-mail of the i-th imported person.
func demoImportEmail(i int) string { return fmt.Sprintf("imported.%d@example.com", i) }

// demoSize is how many leads the demo captures.
const demoSize = 300

// seedDemo populates the API key's tenant through the gRPC server conn leads to.
func seedDemo(ctx context.Context, conn grpc.ClientConnInterface, key string, out io.Writer, travel func(time.Duration)) error {
	d := &demoSeed{
		ctx:       metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key),
		out:       out,
		rng:       rand.New(rand.NewPCG(2026, 11)), // the same population on every run
		now:       time.Now(),
		marketing: marketingv1.NewMarketingServiceClient(conn),
		sales:     salesv1.NewSalesServiceClient(conn),
		product:   productv1.NewProductServiceClient(conn),
		support:   supportv1.NewSupportServiceClient(conn),
		counts:    map[string]int{},
		travel:    travel,
	}
	start := time.Now()
	d.travelTo(demoWaveMonths[0])
	steps := []struct {
		name string
		run  func() error
	}{
		{"catalog", d.seedCatalog},
		{"campaigns", d.seedCampaigns},
		{"imports", d.seedImports},
	}
	for w := range demoWaves {
		from, to := w*demoSize/demoWaves, (w+1)*demoSize/demoWaves
		steps = append(steps, []struct {
			name string
			run  func() error
		}{
			{fmt.Sprintf("wave %d: the clock", w+1), func() error { d.travelTo(demoWaveMonths[w]); return nil }},
			{fmt.Sprintf("wave %d: repeat orders", w+1), d.seedRepeatOrders},
			{fmt.Sprintf("wave %d: leads", w+1), func() error { return d.seedLeads(from, to) }},
			{fmt.Sprintf("wave %d: engagements", w+1), func() error { return d.seedEngagements(from, to) }},
			{fmt.Sprintf("wave %d: deals", w+1), func() error { return d.seedDeals(from, to) }},
			{fmt.Sprintf("wave %d: reactions", w+1), d.settle},
		}...)
	}
	steps = append(steps, []struct {
		name string
		run  func() error
	}{
		{"the clock", func() error { d.travelTo(0); return nil }},
		{"usage and tickets", d.seedProductAndSupport},
		{"NPS", d.seedNps},
		{"churn", d.awaitChurn},
	}...)
	for _, step := range steps {
		if err := step.run(); err != nil {
			return fmt.Errorf("demo: %s: %w", step.name, err)
		}
	}
	fmt.Fprintf(out, "==> demo: seeded %d products, %d campaigns, %d leads (%d engagements), %d deals (%d won, %d lost), %d orders, %d usage records, %d tickets, %d NPS answers in %s\n",
		len(d.products), len(d.campaigns), len(d.leads), d.counts["engagements"], d.counts["deals"], d.counts["won"], d.counts["lost"],
		d.counts["orders"], d.counts["usage"], d.counts["tickets"], d.counts["nps"], time.Since(start).Round(time.Millisecond))
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
			StartTime:   timestamppb.New(d.now.AddDate(0, -demoWaveMonths[0]-1, 0)),
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

// travelTo sets the services' clock to the middle of the month monthsBack before the current one
// (the real time for 0), when the demo may travel.
func (d *demoSeed) travelTo(monthsBack int) {
	if d.travel == nil {
		return
	}
	if monthsBack == 0 {
		d.travel(0)
		return
	}
	now := time.Now().UTC()
	target := time.Date(now.Year(), now.Month()-time.Month(monthsBack), 10+d.rng.IntN(10), 9, 0, 0, 0, time.UTC)
	d.travel(now.Sub(target))
}

// seedImports imports people marketing has never engaged (as the data import does, through the
// identity registry): they enter the lifecycle as SUSPECTs.
func (d *demoSeed) seedImports() error {
	reqs := make([]*marketingv1.ResolveCustomerRequest, demoImports)
	for i := range reqs {
		reqs[i] = &marketingv1.ResolveCustomerRequest{Email: demoImportEmail(i), Create: true, Origin: marketingv1.CustomerOrigin_CUSTOMER_ORIGIN_IMPORT}
	}
	_, err := d.marketing.ResolveCustomers(d.ctx, &marketingv1.ResolveCustomersRequest{Requests: reqs})
	return err
}

// awaitChurn waits, when the demo travelled in time, until the churn sweep (once a minute) has
// churned the first wave's buyers who never bought again.
func (d *demoSeed) awaitChurn() error {
	if d.travel == nil {
		return nil
	}
	fmt.Fprintln(d.out, "==> demo: waiting for the churn sweep (it runs once a minute)...")
	deadline := time.Now().Add(75 * time.Second)
	for {
		f, err := d.marketing.GetLifecycleFunnel(d.ctx, &marketingv1.GetLifecycleFunnelRequest{})
		if err != nil {
			return err
		}
		for _, s := range f.GetFunnel().GetStages() {
			if s.GetStage() == marketingv1.LifecycleStage_LIFECYCLE_STAGE_CHURNED && s.GetCustomers() > 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("no customer churned: the first wave's buyers all bought again")
		}
		select {
		case <-d.ctx.Done():
			return d.ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// settle waits (up to 10 s) until marketing has moved the wave's buyers on the lifecycle, so the
// wave's moves are counted in its month before the clock moves on.
func (d *demoSeed) settle() error {
	deadline := time.Now().Add(10 * time.Second)
	for _, customer := range d.customers {
		for time.Now().Before(deadline) {
			lc, err := d.marketing.GetCustomerLifecycle(d.ctx, &marketingv1.GetCustomerLifecycleRequest{CustomerId: customer})
			if err != nil {
				return err
			}
			if s := lc.GetLifecycle().GetStage(); s != marketingv1.LifecycleStage_LIFECYCLE_STAGE_PROSPECT &&
				s != marketingv1.LifecycleStage_LIFECYCLE_STAGE_SUSPECT {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func (d *demoSeed) seedLeads(from, to int) error {
	for i := from; i < to; i++ {
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

func (d *demoSeed) seedCatalog() error {
	for _, p := range []struct {
		sku, name string
		units     int64
		period    productv1.BillingPeriod
		line      string
		tier      int32
	}{
		{"CRM-STARTER", "CRM Starter", 29, productv1.BillingPeriod_BILLING_PERIOD_MONTHLY, "crm", 1},
		{"CRM-PRO", "CRM Pro", 99, productv1.BillingPeriod_BILLING_PERIOD_MONTHLY, "crm", 2},
		{"CRM-ENTERPRISE", "CRM Enterprise", 9_000, productv1.BillingPeriod_BILLING_PERIOD_YEARLY, "crm", 3},
		{"ONBOARDING", "Onboarding package", 1_500, productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME, "", 0},
		{"TRAINING", "Admin training", 400, productv1.BillingPeriod_BILLING_PERIOD_ONE_TIME, "", 0},
	} {
		created, err := d.product.CreateProduct(d.ctx, &productv1.CreateProductRequest{Product: &productv1.Product{
			Sku: p.sku, DisplayName: p.name, Price: &typev1.Money{CurrencyCode: "EUR", Units: p.units},
			BillingPeriod: p.period, ProductLine: p.line, Tier: p.tier, Category: "software",
			Features: []string{"contacts", "pipelines", "reports", "automation"},
		}})
		if err != nil {
			return err
		}
		d.products = append(d.products, created.GetProduct())
	}
	return nil
}

// seedEngagements has most leads open e-mails, read content and fill forms; the scoring rules
// qualify the busiest ones on their own.
func (d *demoSeed) seedEngagements(from, to int) error {
	types := []marketingv1.EngagementType{
		marketingv1.EngagementType_ENGAGEMENT_TYPE_EMAIL_OPEN, marketingv1.EngagementType_ENGAGEMENT_TYPE_EMAIL_CLICK,
		marketingv1.EngagementType_ENGAGEMENT_TYPE_PAGE_VIEW, marketingv1.EngagementType_ENGAGEMENT_TYPE_CONTENT_DOWNLOAD,
		marketingv1.EngagementType_ENGAGEMENT_TYPE_FORM_SUBMIT, marketingv1.EngagementType_ENGAGEMENT_TYPE_EVENT_ATTENDED,
	}
	for i := from; i < to; i++ {
		lead := d.leads[i]
		for range d.rng.IntN(8) {
			resp, err := d.marketing.RecordEngagement(d.ctx, &marketingv1.RecordEngagementRequest{LeadId: lead.GetId(), Engagement: &marketingv1.Engagement{
				Type: types[d.rng.IntN(len(types))], CampaignId: lead.GetCampaignId(),
			}})
			if err != nil {
				return err
			}
			d.leads[i] = resp.GetLead()
			d.counts["engagements"]++
		}
	}
	return nil
}

// seedDeals converts most qualified leads with an opportunity, prices line items through product,
// and wins, loses or leaves each deal somewhere in the pipeline.
func (d *demoSeed) seedDeals(from, to int) error {
	stages := []string{"QUALIFICATION", "PROPOSAL", "NEGOTIATION"}
	for _, lead := range d.leads[from:to] {
		if lead.GetStatus() != marketingv1.LeadStatus_LEAD_STATUS_MARKETING_QUALIFIED || d.rng.IntN(10) < 2 {
			continue
		}
		conv, err := d.sales.ConvertLead(d.ctx, &salesv1.ConvertLeadRequest{LeadId: lead.GetId(), Opportunity: &salesv1.Opportunity{
			DisplayName: lead.GetCompany() + " " + lead.GetFamilyName() + " deal", CurrencyCode: "EUR",
			CloseDate: d.now.AddDate(0, 0, d.rng.IntN(80)).Format(time.DateOnly),
			OwnerId:   []string{"ada", "grace", "alan"}[d.rng.IntN(3)],
		}})
		if err != nil {
			return err
		}
		opp := conv.GetOpportunity()
		d.counts["deals"]++
		for _, p := range d.pick(1 + d.rng.IntN(2)) {
			if _, err := d.sales.AddLineItem(d.ctx, &salesv1.AddLineItemRequest{OpportunityId: opp.GetId(), LineItem: &salesv1.OrderLine{
				ProductId: p.GetId(), Quantity: int64(1 + d.rng.IntN(20)), DiscountPercent: int32(10 * (d.rng.IntN(4) / 3)),
			}}); err != nil {
				return err
			}
		}
		for _, stage := range stages[:d.rng.IntN(len(stages)+1)] {
			if _, err := d.sales.MoveOpportunityStage(d.ctx, &salesv1.MoveOpportunityStageRequest{Id: opp.GetId(), Stage: stage}); err != nil {
				return err
			}
		}
		switch roll := d.rng.IntN(10); {
		case roll < 5:
			if _, err := d.sales.WinOpportunity(d.ctx, &salesv1.WinOpportunityRequest{Id: opp.GetId()}); err != nil {
				return err
			}
			d.customers = append(d.customers, lead.GetCustomerId())
			d.counts["won"]++
			d.counts["orders"]++
		case roll < 7:
			if _, err := d.sales.LoseOpportunity(d.ctx, &salesv1.LoseOpportunityRequest{Id: opp.GetId(), Reason: "went with a competitor"}); err != nil {
				return err
			}
			d.counts["lost"]++
		}
	}
	return nil
}

// pick returns n distinct products.
func (d *demoSeed) pick(n int) []*productv1.Product {
	order := d.rng.Perm(len(d.products))
	out := make([]*productv1.Product, 0, n)
	for _, i := range order[:n] {
		out = append(out, d.products[i])
	}
	return out
}

// seedRepeatOrders has about one customer in five buy again each month, some on a discount: they
// become repeat customers, and the most eager ones the best RFM scores.
func (d *demoSeed) seedRepeatOrders() error {
	for _, customer := range d.customers {
		if d.rng.IntN(5) != 0 {
			continue
		}
		p := d.products[3+d.rng.IntN(2)] // a one-time product
		discount := int32(0)
		if d.rng.IntN(4) == 0 {
			discount = int32(10 * (1 + d.rng.IntN(3)))
		}
		if _, err := d.sales.CreateOrder(d.ctx, &salesv1.CreateOrderRequest{Order: &salesv1.Order{
			CustomerId: customer, CurrencyCode: "EUR", Lines: []*salesv1.OrderLine{{ProductId: p.GetId(), Quantity: int64(1 + d.rng.IntN(3)), DiscountPercent: discount}},
		}}); err != nil {
			return err
		}
		d.counts["orders"]++
	}
	return nil
}

// seedProductAndSupport waits for product to turn the orders into subscriptions and one-time
// entitlements (it reacts to sales.order.placed on the bus), records usage on the subscriptions,
// and opens tickets on what customers own.
func (d *demoSeed) seedProductAndSupport() error {
	agents := []string{"agent-kim", "agent-lee", "agent-sam"}
	for _, customer := range d.customers {
		subs, owned, err := d.grantsOf(customer)
		if err != nil {
			return err
		}
		for _, sub := range subs {
			if sub.GetStatus() != productv1.SubscriptionStatus_SUBSCRIPTION_STATUS_ACTIVE {
				continue
			}
			for range d.rng.IntN(6) {
				if _, err := d.product.RecordUsage(d.ctx, &productv1.RecordUsageRequest{SubscriptionId: sub.GetId(), UsageRecord: &productv1.UsageRecord{
					Feature: []string{"contacts", "pipelines", "reports", "automation"}[d.rng.IntN(4)], Quantity: int64(1 + d.rng.IntN(50)),
					UserId: fmt.Sprintf("user-%d", d.rng.IntN(5)),
				}}); err != nil {
					return err
				}
				d.counts["usage"]++
			}
		}
		if len(owned) == 0 || d.rng.IntN(2) == 0 {
			continue
		}
		t, err := d.support.CreateTicket(d.ctx, &supportv1.CreateTicketRequest{Ticket: &supportv1.Ticket{
			CustomerId: customer, ProductId: owned[0],
			Subject:  []string{"Cannot import contacts", "Report totals look wrong", "How do I add a pipeline stage?", "Login fails after SSO change"}[d.rng.IntN(4)],
			Priority: supportv1.TicketPriority(1 + d.rng.IntN(4)), Channel: supportv1.TicketChannel(1 + d.rng.IntN(4)),
		}})
		if err != nil {
			return err
		}
		d.counts["tickets"]++
		id := t.GetTicket().GetId()
		if d.rng.IntN(4) == 0 {
			continue // still in the queue
		}
		if _, err := d.support.AssignTicket(d.ctx, &supportv1.AssignTicketRequest{Id: id, AssigneeId: agents[d.rng.IntN(len(agents))]}); err != nil {
			return err
		}
		if _, err := d.support.AddComment(d.ctx, &supportv1.AddCommentRequest{TicketId: id, Comment: &supportv1.Comment{Body: "Thanks, we are looking into it."}}); err != nil {
			return err
		}
		if d.rng.IntN(3) == 0 {
			continue // open, being worked on
		}
		if _, err := d.support.SolveTicket(d.ctx, &supportv1.SolveTicketRequest{Id: id}); err != nil {
			return err
		}
		if _, err := d.support.RateTicket(d.ctx, &supportv1.RateTicketRequest{Id: id, Score: int32(2 + d.rng.IntN(4))}); err != nil {
			return err
		}
	}
	return nil
}

// grantsOf waits (up to 10 s) until product has granted the customer something, and returns their
// subscriptions and the products they own (subscribed to or bought once).
func (d *demoSeed) grantsOf(customer string) ([]*productv1.Subscription, []string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		subs, err := d.product.ListSubscriptions(d.ctx, &productv1.ListSubscriptionsRequest{Filter: fmt.Sprintf("customer_id = %q", customer)})
		if err != nil {
			return nil, nil, err
		}
		ents, err := d.product.ListEntitlements(d.ctx, &productv1.ListEntitlementsRequest{CustomerId: customer})
		if err != nil {
			return nil, nil, err
		}
		var owned []string
		for _, s := range subs.GetSubscriptions() {
			owned = append(owned, s.GetProductId())
		}
		for _, e := range ents.GetEntitlements() {
			owned = append(owned, e.GetProductId())
		}
		if len(owned) > 0 || time.Now().After(deadline) {
			return subs.GetSubscriptions(), owned, nil
		}
		select {
		case <-d.ctx.Done():
			return nil, nil, d.ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// seedNps has most customers answer the NPS survey, most of them happily.
func (d *demoSeed) seedNps() error {
	for _, customer := range d.customers {
		if d.rng.IntN(5) == 0 {
			continue
		}
		score := []int32{10, 10, 9, 9, 8, 7, 6, 3}[d.rng.IntN(8)]
		if _, err := d.support.RecordNpsResponse(d.ctx, &supportv1.RecordNpsResponseRequest{NpsResponse: &supportv1.NpsResponse{
			CustomerId: customer, Score: score,
		}}); err != nil {
			return err
		}
		d.counts["nps"]++
	}
	return nil
}
