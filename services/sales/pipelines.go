package sales

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/etag"
	"github.com/crmcycle/crm/pkg/page"
	"github.com/crmcycle/crm/pkg/protoupdate"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// Pipelines are the pipeline use cases.
type Pipelines struct{ Env }

// NewPipelines returns the use cases.
func NewPipelines(env Env) *Pipelines { return &Pipelines{env} }

var updatablePipelineFields = []string{"display_name", "stages"}

// Create makes a pipeline.
func (p *Pipelines) Create(ctx context.Context, tenant string, in *Pipeline) (*Pipeline, error) {
	if err := checkStages(in); err != nil {
		return nil, err
	}
	ts := timestamppb.New(p.Now().UTC())
	pl := &Pipeline{Id: uuid.Must(uuid.NewV7()).String(), DisplayName: in.GetDisplayName(), Stages: in.GetStages(),
		CreateTime: ts, UpdateTime: ts, Etag: etag.First}
	event, err := p.event(ctx, salesv1.EventPipelineCreated.Of(&salesv1.PipelineChanged{PipelineId: pl.GetId()}), tenant, "")
	if err != nil {
		return nil, err
	}
	return pl, p.Store.CreatePipeline(ctx, tenant, pl, event)
}

// Get returns a pipeline; the default one exists for every tenant.
func (p *Pipelines) Get(ctx context.Context, tenant, id string) (*Pipeline, error) {
	if id == "" {
		id = DefaultPipelineID
	}
	pl, err := p.Store.GetPipeline(ctx, tenant, id)
	if errors.Is(err, ErrPipelineNotFound) && id == DefaultPipelineID {
		return defaultPipeline(), nil
	}
	return pl, err
}

// List returns the default pipeline first, then the created ones newest first.
func (p *Pipelines) List(ctx context.Context, tenant string, q Query) (page.Page[*Pipeline], error) {
	var out []*Pipeline
	if q.After == "" {
		def, err := p.Get(ctx, tenant, DefaultPipelineID)
		if err != nil {
			return page.Page[*Pipeline]{}, err
		}
		out = append(out, def)
		q.Limit--
		if q.Limit == 0 {
			return page.Page[*Pipeline]{Items: out, Next: DefaultPipelineID}, nil
		}
	}
	if q.After == DefaultPipelineID {
		q.After = ""
	}
	rest, err := p.Store.ListPipelines(ctx, tenant, q)
	rest.Items = append(out, rest.Items...)
	return rest, err
}

// Update changes a pipeline's name or stages. Removing a stage that holds open opportunities is
// refused inside the write; open deals keep the probability of the stage they entered until
// they move. Without an etag, a pipeline changed meanwhile is read again and changed as it is now.
func (p *Pipelines) Update(ctx context.Context, tenant string, in *Pipeline, mask *fieldmaskpb.FieldMask) (*Pipeline, error) {
	if in.GetId() == "" {
		return nil, apierr.Invalid("pipeline.id", "required")
	}
	fields, err := protoupdate.Fields(in, mask, updatablePipelineFields, "update_mask")
	if err != nil {
		return nil, err
	}
	return etag.Retry(ErrStale, ErrPipelineContention, func() (*Pipeline, error) {
		existing, err := p.Get(ctx, tenant, in.GetId())
		if err != nil {
			return nil, err
		}
		merged, err := protoupdate.Merge(p.Validator, "pipeline", existing, in, fields, ErrPipelineEtag)
		if err != nil {
			return nil, err
		}
		if len(fields.Fields) == 0 { // nothing to change: no write, no new etag
			return existing, nil
		}
		if err := checkStages(merged); err != nil {
			return nil, err
		}
		ts := timestamppb.New(p.Now().UTC())
		if merged.CreateTime == nil {
			merged.CreateTime = ts
		}
		merged.UpdateTime = ts
		merged.Etag = etag.Next(existing.GetEtag())
		var removed []string
		for _, s := range existing.GetStages() {
			if stageOf(merged, s.GetId()) == nil {
				removed = append(removed, s.GetId())
			}
		}
		event, err := p.event(ctx, salesv1.EventPipelineUpdated.Of(&salesv1.PipelineChanged{PipelineId: merged.GetId()}), tenant, "")
		if err != nil {
			return nil, err
		}
		if err := p.Store.UpdatePipeline(ctx, tenant, merged, PipelineVersion(existing), removed, event); err != nil {
			return nil, err
		}
		return merged, nil
	})
}
