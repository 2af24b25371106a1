package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// supportScopes are what a support agent's key holds in these tests.
var supportScopes = []string{"support.read", "support.write"}

const supportCustomer = "0192f3a0-0000-7000-8000-00000000c001"

func (s *system) support(key string) (supportv1.SupportServiceClient, context.Context) {
	ctx := context.Background()
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}
	return supportv1.NewSupportServiceClient(s.grpc), ctx
}

// createTicket opens a ticket over REST and returns its JSON.
func (s *system) createTicket(t *testing.T, key, body string) map[string]any {
	t.Helper()
	r := s.do(t, http.MethodPost, "/v1/tickets", key, []byte(body))
	if r.status != http.StatusOK {
		t.Fatalf("create ticket: %d %s", r.status, r.body)
	}
	return r.json(t)
}

// supportEvents decodes a tenant's support events of one type, across the partition streams.
func (s *system) supportEvents(t *testing.T, tenant, eventType string) []*eventv1.Event {
	t.Helper()
	ctx := context.Background()
	var out []*eventv1.Event
	streams := s.rdb.Scan(ctx, 0, "crm:*:support:events", 100).Iterator()
	for streams.Next(ctx) {
		msgs, err := s.rdb.XRange(ctx, streams.Val(), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			raw := m.Values["e"].(string)
			if !strings.Contains(raw, tenant) {
				continue
			}
			ev := &eventv1.Event{}
			if err := proto.Unmarshal([]byte(raw), ev); err != nil {
				t.Fatal(err)
			}
			if ev.GetTenantId() == tenant && ev.GetType() == eventType {
				out = append(out, ev)
			}
		}
	}
	return out
}

// supportFootprint counts the Redis keys a tenant owns in support, to prove a refused write wrote
// nothing.
func (s *system) supportFootprint(t *testing.T, tenant string) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	iter := s.rdb.Scan(ctx, 0, "crm:*:support:"+tenant+":*", 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
