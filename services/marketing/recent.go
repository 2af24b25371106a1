package marketing

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/customerref"
	"github.com/crmcycle/crm/pkg/redisconn"
)

// maxRecent bounds the recently touched leads a process keeps (about 1-2 KB each); past it the
// table starts over.
const maxRecent = 10_000

// recentTTL is how long a touched lead is kept: a returning person's next capture usually comes
// within it, and personal data held in memory does not outlive it.
const recentTTL = 10 * time.Minute

// recentLeads are the leads this process touched lately, by tenant and e-mail, as it wrote them.
// A capture of one of them sends its touch straight away, conditional on the version kept here,
// instead of first trying a create that the e-mail's claim refuses: one round trip for a returning
// person instead of two. A version another write moved on makes the touch fail its check, and the
// capture goes the usual way; nothing here is trusted beyond that check. The leads are read only:
// a touch builds a new lead from a clone (addTouch). An erased or merged customer's leads are
// dropped as soon as the process hears of it (FollowEnded), an erased lead at once.
type recentLeads struct {
	now   func() time.Time // time.Now when nil
	mu    sync.Mutex
	leads map[recentKey]recentLead
}

type recentKey struct{ tenant, email string }

type recentLead struct {
	lead    *Lead
	expires time.Time
}

func (r *recentLeads) get(tenant, email string) *Lead {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.leads[recentKey{tenant, email}]
	if !ok || !r.clock().Before(e.expires) {
		return nil
	}
	return e.lead
}

func (r *recentLeads) put(tenant, email string, lead *Lead) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leads == nil || len(r.leads) >= maxRecent {
		r.leads = map[recentKey]recentLead{}
	}
	r.leads[recentKey{tenant, email}] = recentLead{lead: lead, expires: r.clock().Add(recentTTL)}
}

func (r *recentLeads) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

func (r *recentLeads) forget(tenant, email string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.leads, recentKey{tenant, email})
}

// forgetCustomer drops the leads of the customer an Ended announcement names, or every lead when
// ended is "" (an announcement may have been missed).
func (r *recentLeads) forgetCustomer(ended string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, e := range r.leads {
		if ended == "" || customerref.EndedMessage(k.tenant, e.lead.GetCustomerId()) == ended {
			delete(r.leads, k)
		}
	}
}

// FollowEnded listens on rdb until ctx is done for the customers marketing erases or merges
// (customerref.Ended, announced in the erase's or merge's own write), dropping their recently
// touched leads: no process keeps an erased person's data in memory.
func (l *Leads) FollowEnded(ctx context.Context, rdb redis.UniversalClient) {
	redisconn.Follow(ctx, rdb, customerref.Ended, l.recent.forgetCustomer, func() { l.recent.forgetCustomer("") }, nil)
}
