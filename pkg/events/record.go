package events

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/keyspace"
	eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"
)

// Recorder puts on the producer's stream an event that records a read worth auditing (an
// export): nothing changed, but the tenant's event history, its audit log, shows who read what.
type Recorder struct {
	Publisher Publisher
	Redis     redis.UniversalClient
	Keys      *keyspace.Space
	Now       func() time.Time
}

// Record appends the event of body to the tenant's stream of the producer: one round trip.
func (r Recorder) Record(ctx context.Context, tenant string, body eventv1.Body) error {
	_, data, err := r.Publisher.Envelope(ctx, body, tenant, "", r.Now())
	if err != nil {
		return err
	}
	return commit.New().Append(r.Keys.Scope(r.Publisher.Producer, tenant).Stream(), data).Run(ctx, r.Redis)
}
