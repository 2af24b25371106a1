package redisstore

import (
	"context"

	"github.com/crmcycle/crm/pkg/commit"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/services/sales"
)

// CreatePipeline implements sales.Store.
func (s *Store) CreatePipeline(ctx context.Context, tenant string, p *sales.Pipeline, event []byte) error {
	k, w := s.scope(tenant), commit.New()
	w.Save(k.resource("pipeline", p.GetId()), p, "", p.GetEtag())
	w.ZAdd(k.index("pipeline"), 0, p.GetId())
	return s.run(ctx, k, w, event)
}

// UpdatePipeline implements sales.Store: a removed stage must hold no open deal at the moment of
// the write, and deals pin the pipeline's version, so no deal enters a stage being removed.
func (s *Store) UpdatePipeline(ctx context.Context, tenant string, p *sales.Pipeline, prevVersion string, removed []string, event []byte) error {
	k, w := s.scope(tenant), commit.New()
	for _, stage := range removed {
		w.ExpectAbsent(k.openStage(p.GetId(), stage))
	}
	w.Save(k.resource("pipeline", p.GetId()), p, prevVersion, p.GetEtag())
	return s.run(ctx, k, w, event)
}

// GetPipeline implements sales.Store.
func (s *Store) GetPipeline(ctx context.Context, tenant, id string) (*sales.Pipeline, error) {
	return commit.Get(ctx, s.rdb, s.scope(tenant).resource("pipeline", id), &sales.Pipeline{}, sales.ErrPipelineNotFound)
}

// ListPipelines implements sales.Store.
func (s *Store) ListPipelines(ctx context.Context, tenant string, q sales.Query) (page.Page[*sales.Pipeline], error) {
	q.Index = sales.Index{Desc: true}
	return list(ctx, s, tenant, "pipeline", q, func() *sales.Pipeline { return &sales.Pipeline{} })
}
