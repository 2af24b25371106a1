package customerref

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/redisconn"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// Errors of the check itself.
var (
	// ErrUnavailable is marketing not answering: the write is refused, honestly, as retryable
	// (503 with Retry-After), since writing about an unchecked customer is what integrity forbids.
	ErrUnavailable = apierr.New(apierr.Unavailable, "CUSTOMER_REGISTRY_UNAVAILABLE",
		"the customer could not be checked: marketing's identity registry is unavailable; retry")
	// ErrDenied is the caller's key lacking marketing.read: the check (of a write, or of a read
	// about a customer the service has no record of) reads the registry with the caller's own
	// credential, as every call between services does.
	ErrDenied = apierr.New(apierr.PermissionDenied, "MISSING_SCOPE",
		"the customer is checked in marketing's identity registry with the caller's key: the API key needs the marketing.read scope")
)

// Defaults of a Checker's memory of positive answers.
const (
	DefaultSize = 100_000
	DefaultTTL  = time.Minute
)

// attempts and backoff bound the retries of a check while marketing is briefly unavailable.
const (
	attempts = 3
	backoff  = 50 * time.Millisecond
)

// Checker tells the services outside marketing whether a customer exists in the caller's tenant,
// by reading marketing's registry (GetCustomerIdentity) on the process's shared connection: traced,
// with a deadline, the caller's credential forwarded, and retried while marketing is briefly
// unavailable (a read is idempotent).
//
// Positive answers are remembered for a short while (TTL): a customer only stops existing by an
// erase or a merge, and marketing announces those on the pub/sub channel Ended in the same write,
// which every process's checker follows (Run), so every replica forgets at once (a consumer group
// would tell one replica only). Negative answers are never remembered, so a customer registered a
// moment ago (a capture, a contact) passes at once.
type Checker struct {
	dial  func() (*grpc.ClientConn, error)
	known *expirable.LRU[string, struct{}]
	// forgotten counts what was forgotten, under mu: an answer that was on its way while a
	// customer was forgotten is not remembered (it may predate the erase or merge).
	mu        sync.Mutex
	forgotten uint64
}

// NewChecker returns a checker reaching marketing through dial (called per check; the pool behind
// it keeps one connection), remembering up to size positive answers for ttl each.
func NewChecker(dial func() (*grpc.ClientConn, error), size int, ttl time.Duration) *Checker {
	return &Checker{dial: dial, known: expirable.NewLRU[string, struct{}](size, nil, ttl)}
}

func cacheKey(tenant, customer string) string { return tenant + "/" + customer }

// Check answers nil when the tenant has the customer unmerged; NotFound(field) when it has no such
// customer (or it was erased), Merged(field, survivor) when it was merged, ErrUnavailable when
// marketing cannot answer, ErrDenied when the caller may not read the registry.
func (c *Checker) Check(ctx context.Context, tenant, customer, field string) error {
	if _, ok := c.known.Get(cacheKey(tenant, customer)); ok {
		return nil
	}
	c.mu.Lock()
	before := c.forgotten
	c.mu.Unlock()
	conn, err := c.dial()
	if err != nil {
		return ErrUnavailable.Wrap(err)
	}
	client := marketingv1.NewMarketingServiceClient(conn)
	var resp *marketingv1.GetCustomerIdentityResponse
	for i := range attempts {
		resp, err = client.GetCustomerIdentity(ctx, &marketingv1.GetCustomerIdentityRequest{CustomerId: customer})
		if status.Code(err) != codes.Unavailable || i == attempts-1 {
			break
		}
		select {
		case <-ctx.Done():
			return ErrUnavailable.Wrap(ctx.Err())
		case <-time.After(backoff << i):
		}
	}
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound, codes.InvalidArgument:
		return NotFound(field)
	case codes.PermissionDenied:
		return ErrDenied.Wrap(err)
	default:
		// Down, overloaded, timed out: the customer cannot be checked, so nothing is written.
		return ErrUnavailable.Wrap(err)
	}
	if survivor := resp.GetCustomer().GetMergedInto(); survivor != "" {
		return Merged(field, survivor)
	}
	c.mu.Lock()
	if c.forgotten == before {
		c.known.Add(cacheKey(tenant, customer), struct{}{})
	}
	c.mu.Unlock()
	return nil
}

// Forget drops a remembered positive answer: the customer was erased or merged.
func (c *Checker) Forget(tenant, customer string) { c.forget(cacheKey(tenant, customer)) }

// forget drops the answer of key, or every answer when key is "".
func (c *Checker) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgotten++
	if key == "" {
		c.known.Purge()
		return
	}
	c.known.Remove(key)
}

// Ended is the pub/sub channel on which marketing announces, in the write of an erase or a merge,
// the customer that stopped existing (EndedMessage).
const Ended = "crm:{customers}:ended"

// EndedMessage is the announcement on Ended of a tenant's customer.
func EndedMessage(tenant, customer string) string { return cacheKey(tenant, customer) }

// Run follows Ended on rdb until ctx is done, forgetting each customer announced; whenever the
// subscription (re)starts or breaks it forgets everything, since an announcement may have been
// missed. A process runs it beside its services (they run it as background work).
func (c *Checker) Run(ctx context.Context, rdb redis.UniversalClient) error {
	redisconn.Follow(ctx, rdb, Ended, c.forget, func() { c.forget("") }, nil)
	return nil
}
