package productv1

import eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"

// The event types product publishes on its stream, each with its payload (product_events.proto).
var (
	EventProductCreated  = eventv1.Type[*ProductChanged]{Name: "product.product.created"}
	EventProductUpdated  = eventv1.Type[*ProductChanged]{Name: "product.product.updated"}
	EventProductArchived = eventv1.Type[*ProductChanged]{Name: "product.product.archived"}

	EventSubscriptionActivated = eventv1.Type[*SubscriptionChanged]{Name: "product.subscription.activated"}
	EventSubscriptionRenewed   = eventv1.Type[*SubscriptionChanged]{Name: "product.subscription.renewed"}
	EventSubscriptionCanceled  = eventv1.Type[*SubscriptionChanged]{Name: "product.subscription.canceled"}
	EventSubscriptionExpired   = eventv1.Type[*SubscriptionChanged]{Name: "product.subscription.expired"}
	// A one-time line's entitlement: no subscription (nothing renews), so no subscription event.
	EventEntitlementGranted = eventv1.Type[*EntitlementGranted]{Name: "product.entitlement.granted"}

	EventAdoptionChanged = eventv1.Type[*AdoptionChanged]{Name: "product.adoption.changed"}

	// Bulk reads, recorded for the audit log (crm.event.v1.Exported).
	EventProductsExported = eventv1.Type[*eventv1.Exported]{Name: "product.product.exported"}

	// A cancelled import, recorded for the audit log (crm.event.v1.OperationCancelled).
	EventOperationCancelled = eventv1.Type[*eventv1.OperationCancelled]{Name: "product.operation.cancelled"}
)
