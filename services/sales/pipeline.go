package sales

import (
	"context"
	"fmt"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/page"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

// DefaultPipelineID names the pipeline every tenant has without setting it up.
const DefaultPipelineID = "default"

// Errors of the pipeline use cases.
var (
	ErrPipelineNotFound   = apierr.New(apierr.NotFound, "PIPELINE_NOT_FOUND", "pipeline not found")
	ErrPipelineEtag       = apierr.New(apierr.Aborted, "ETAG_MISMATCH", "the pipeline changed since it was read; read it again and retry")
	ErrPipelineContention = apierr.New(apierr.Aborted, "CONCURRENT_UPDATE", "the pipeline kept changing concurrently; retry")
	ErrStageInUse         = apierr.New(apierr.FailedPrecondition, "STAGE_IN_USE",
		"a removed stage still holds open opportunities; move them first")
)

// PipelineStore persists pipelines. The default pipeline is stored only once it is edited.
type PipelineStore interface {
	CreatePipeline(ctx context.Context, tenant string, p *Pipeline, event []byte) error
	// UpdatePipeline replaces the pipeline at version prevVersion ("" for the default never
	// stored) with p; ErrStale when it changed, ErrStageInUse when one of the removed stages
	// holds open opportunities at the moment of the write.
	UpdatePipeline(ctx context.Context, tenant string, p *Pipeline, prevVersion string, removed []string, event []byte) error
	// GetPipeline returns a stored pipeline or ErrPipelineNotFound.
	GetPipeline(ctx context.Context, tenant, id string) (*Pipeline, error)
	// ListPipelines pages the created pipelines (not the default), newest first.
	ListPipelines(ctx context.Context, tenant string, q Query) (page.Page[*Pipeline], error)
}

// defaultPipeline is DESIGN.md §5's pipeline, as served before a tenant edits it (etag "0").
func defaultPipeline() *Pipeline {
	open, closed := salesv1.StageOutcome_STAGE_OUTCOME_OPEN, salesv1.ForecastCategory_FORECAST_CATEGORY_CLOSED
	stage := func(id, name string, p int32, c salesv1.ForecastCategory, o salesv1.StageOutcome) *salesv1.PipelineStage {
		return &salesv1.PipelineStage{Id: id, DisplayName: name, Probability: p, ForecastCategory: c, Outcome: o}
	}
	return &Pipeline{
		Id: DefaultPipelineID, DisplayName: "Default", Etag: "0",
		Stages: []*salesv1.PipelineStage{
			stage("PROSPECTING", "Prospecting", 10, salesv1.ForecastCategory_FORECAST_CATEGORY_PIPELINE, open),
			stage("QUALIFICATION", "Qualification", 20, salesv1.ForecastCategory_FORECAST_CATEGORY_PIPELINE, open),
			stage("PROPOSAL", "Proposal", 50, salesv1.ForecastCategory_FORECAST_CATEGORY_BEST_CASE, open),
			stage("NEGOTIATION", "Negotiation", 80, salesv1.ForecastCategory_FORECAST_CATEGORY_COMMIT, open),
			stage("CLOSED_WON", "Closed won", 100, closed, salesv1.StageOutcome_STAGE_OUTCOME_WON),
			stage("CLOSED_LOST", "Closed lost", 0, salesv1.ForecastCategory_FORECAST_CATEGORY_OMITTED, salesv1.StageOutcome_STAGE_OUTCOME_LOST),
		},
	}
}

// PipelineVersion is the store version an opportunity write pins: "" for the default pipeline
// never stored.
func PipelineVersion(p *Pipeline) string {
	if p.GetEtag() == "0" {
		return ""
	}
	return p.GetEtag()
}

// stageOf returns the pipeline's stage with id, or nil.
func stageOf(p *Pipeline, id string) *salesv1.PipelineStage {
	for _, s := range p.GetStages() {
		if s.GetId() == id {
			return s
		}
	}
	return nil
}

// stageWith returns the pipeline's first stage with an outcome.
func stageWith(p *Pipeline, outcome salesv1.StageOutcome) *salesv1.PipelineStage {
	for _, s := range p.GetStages() {
		if s.GetOutcome() == outcome {
			return s
		}
	}
	return nil
}

// checkStages enforces what the forecast and the status machine rely on: unique ids, at least
// one open stage, exactly one WON and one LOST stage, open stages never CLOSED in the forecast.
func checkStages(p *Pipeline) error {
	seen := map[string]bool{}
	count := map[salesv1.StageOutcome]int{}
	for i, s := range p.GetStages() {
		field := fmt.Sprintf("pipeline.stages[%d]", i)
		if seen[s.GetId()] {
			return apierr.Invalid(field+".id", "stage ids must be unique")
		}
		seen[s.GetId()] = true
		count[s.GetOutcome()]++
		closedCategory := s.GetForecastCategory() == salesv1.ForecastCategory_FORECAST_CATEGORY_CLOSED
		if s.GetOutcome() == salesv1.StageOutcome_STAGE_OUTCOME_OPEN && closedCategory {
			return apierr.Invalid(field+".forecast_category", "an open stage cannot be CLOSED")
		}
		if s.GetOutcome() == salesv1.StageOutcome_STAGE_OUTCOME_WON && (s.GetProbability() != 100 || !closedCategory) {
			return apierr.Invalid(field, "the WON stage has probability 100 and category CLOSED")
		}
		if s.GetOutcome() == salesv1.StageOutcome_STAGE_OUTCOME_LOST && s.GetProbability() != 0 {
			return apierr.Invalid(field, "the LOST stage has probability 0")
		}
	}
	if count[salesv1.StageOutcome_STAGE_OUTCOME_OPEN] == 0 || count[salesv1.StageOutcome_STAGE_OUTCOME_WON] != 1 ||
		count[salesv1.StageOutcome_STAGE_OUTCOME_LOST] != 1 {
		return apierr.Invalid("pipeline.stages", "need at least one open stage and exactly one WON and one LOST stage")
	}
	return nil
}
