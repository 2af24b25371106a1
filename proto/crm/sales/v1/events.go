package salesv1

import eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"

// The event types sales publishes on its stream, each with its payload (sales_events.proto).
var (
	EventAccountCreated = eventv1.Type[*AccountChanged]{Name: "sales.account.created"}
	EventAccountUpdated = eventv1.Type[*AccountChanged]{Name: "sales.account.updated"}
	EventAccountDeleted = eventv1.Type[*AccountChanged]{Name: "sales.account.deleted"}

	EventContactCreated = eventv1.Type[*ContactChanged]{Name: "sales.contact.created"}
	EventContactUpdated = eventv1.Type[*ContactChanged]{Name: "sales.contact.updated"}
	EventContactDeleted = eventv1.Type[*ContactChanged]{Name: "sales.contact.deleted"}

	EventLeadConverted = eventv1.Type[*LeadConverted]{Name: "sales.lead.converted"}

	EventPipelineCreated = eventv1.Type[*PipelineChanged]{Name: "sales.pipeline.created"}
	EventPipelineUpdated = eventv1.Type[*PipelineChanged]{Name: "sales.pipeline.updated"}

	EventOpportunityCreated      = eventv1.Type[*OpportunityChanged]{Name: "sales.opportunity.created"}
	EventOpportunityUpdated      = eventv1.Type[*OpportunityChanged]{Name: "sales.opportunity.updated"}
	EventOpportunityStageChanged = eventv1.Type[*OpportunityStageChanged]{Name: "sales.opportunity.stage_changed"}
	EventOpportunityWon          = eventv1.Type[*OpportunityWon]{Name: "sales.opportunity.won"}
	EventOpportunityLost         = eventv1.Type[*OpportunityLost]{Name: "sales.opportunity.lost"}

	EventOrderPlaced = eventv1.Type[*OrderPlaced]{Name: "sales.order.placed"}

	EventCustomerValueChanged = eventv1.Type[*CustomerValueChanged]{Name: "sales.customer.value_changed"}

	EventActivityCreated   = eventv1.Type[*ActivityChanged]{Name: "sales.activity.created"}
	EventActivityCompleted = eventv1.Type[*ActivityChanged]{Name: "sales.activity.completed"}

	// Bulk reads, recorded for the audit log (crm.event.v1.Exported).
	EventAccountsExported = eventv1.Type[*eventv1.Exported]{Name: "sales.account.exported"}
	EventContactsExported = eventv1.Type[*eventv1.Exported]{Name: "sales.contact.exported"}
	EventOrdersExported   = eventv1.Type[*eventv1.Exported]{Name: "sales.order.exported"}

	// A cancelled import, recorded for the audit log (crm.event.v1.OperationCancelled).
	EventOperationCancelled = eventv1.Type[*eventv1.OperationCancelled]{Name: "sales.operation.cancelled"}
)
