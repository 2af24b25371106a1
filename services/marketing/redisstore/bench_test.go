package redisstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/crmcycle/crm/pkg/importer"
	"github.com/crmcycle/crm/pkg/redistest"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
)

// BenchmarkCapture is a CaptureLead below the gRPC layer, on a real Redis: the use case, its
// three events and the store's write (new), or the refused create and the touch (known). Its
// allocations per op are the part of crm's per-call allocations that the capture itself makes:
//
// redis-µs/op is the CPU redis-server spent per capture (its write script).
//
//	go test -run '^$' -bench Capture -benchmem ./services/marketing/redisstore/
func BenchmarkCapture(b *testing.B) {
	for _, known := range []bool{false, true} {
		name := "new"
		if known {
			name = "known"
		}
		b.Run(name, func(b *testing.B) {
			f := setup(b)
			ctx := context.Background()
			in := &marketing.Lead{Email: "bench@example.com", GivenName: "Ada", FamilyName: "Lovelace", Company: "Analytical Engines",
				Channel: typev1.Channel_CHANNEL_WEB, Tags: []string{"webinar"},
				Consent: []*marketingv1.Consent{{Channel: typev1.Channel_CHANNEL_EMAIL, Granted: true}}}
			if _, err := f.leads.Capture(ctx, f.tenant, in); err != nil { // the rules read, the scripts loaded
				b.Fatal(err)
			}
			email := []byte("bench-")
			b.ReportAllocs()
			cpu := redistest.CPU(b, f.rdb)
			for i := 0; b.Loop(); i++ {
				if !known {
					in.Email = string(append(strconv.AppendInt(email, int64(i), 10), "@example.com"...))
				}
				if _, err := f.leads.Capture(ctx, f.tenant, in); err != nil {
					b.Fatal(err)
				}
			}
			redistest.ReportCPU(b, f.rdb, cpu)
		})
	}
}

// BenchmarkImport is a lead import's batch below the gRPC layer, on a real Redis: importer.BatchSize
// new leads (the columns of the bench's file: email, names, company, channel) through Leads.Import,
// its reads and its writes (commit.RunBatch). An op is one batch; redis-µs/row is the CPU
// redis-server spent per row.
//
//	go test -run '^$' -bench Import -benchmem ./services/marketing/redisstore/
func BenchmarkImport(b *testing.B) {
	f := setup(b)
	ctx := context.Background()
	rows := make([]marketing.ImportedLead, importer.BatchSize)
	email := []byte("import-")
	next := 0
	batch := func() {
		for i := range rows {
			rows[i] = marketing.ImportedLead{Lead: &marketing.Lead{
				Email:     string(append(strconv.AppendInt(email, int64(next), 10), "@example.com"...)),
				GivenName: "Ada", FamilyName: "Lovelace", Company: "Analytical Engines", Channel: typev1.Channel_CHANNEL_WEB}}
			next++
		}
		out, err := f.leads.Import(ctx, f.tenant, rows)
		if err != nil {
			b.Fatal(err)
		}
		if out[0].Result != importer.Created || out[len(out)-1].Result != importer.Created {
			b.Fatalf("imported %v, want created", out[0])
		}
	}
	batch() // the scripts loaded
	b.ReportAllocs()
	cpu := redistest.CPU(b, f.rdb)
	for b.Loop() {
		batch()
	}
	b.ReportMetric(float64(redistest.CPU(b, f.rdb)-cpu)/float64(time.Microsecond)/float64(b.N*len(rows)), "redis-µs/row")
	b.ReportMetric(float64(b.Elapsed())/float64(time.Microsecond)/float64(b.N*len(rows)), "µs/row")
}
