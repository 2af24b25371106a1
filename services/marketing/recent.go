package marketing

import "sync"

// maxRecent bounds the recently touched leads a process keeps (about 1-2 KB each); past it the
// table starts over.
const maxRecent = 10_000

// recentLeads are the leads this process touched lately, by tenant and e-mail, as it wrote them.
// A capture of one of them sends its touch straight away, conditional on the version kept here,
// instead of first trying a create that the e-mail's claim refuses: one round trip for a returning
// person instead of two. A version another write moved on makes the touch fail its check, and the
// capture goes the usual way; nothing here is trusted beyond that check. The leads are read only:
// a touch builds a new lead from a clone (addTouch).
type recentLeads struct {
	mu    sync.Mutex
	leads map[recentKey]*Lead
}

type recentKey struct{ tenant, email string }

func (r *recentLeads) get(tenant, email string) *Lead {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leads[recentKey{tenant, email}]
}

func (r *recentLeads) put(tenant, email string, lead *Lead) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leads == nil || len(r.leads) >= maxRecent {
		r.leads = map[recentKey]*Lead{}
	}
	r.leads[recentKey{tenant, email}] = lead
}

func (r *recentLeads) forget(tenant, email string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.leads, recentKey{tenant, email})
}
