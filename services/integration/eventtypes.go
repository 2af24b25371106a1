package integration

import (
	"fmt"
	"slices"
	"strings"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/auth"
	integrationv1 "github.com/crmcycle/crm/proto/crm/integration/v1"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	productv1 "github.com/crmcycle/crm/proto/crm/product/v1"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"
)

// EventTypes are the event types an endpoint's filter may name: every type the producers declare
// (eventtypes_test.go checks the list against their events.go files).
var EventTypes = []string{
	marketingv1.EventLeadCaptured.Name,
	marketingv1.EventLeadUpdated.Name,
	marketingv1.EventLeadErased.Name,
	marketingv1.EventLeadEngaged.Name,
	marketingv1.EventLeadQualified.Name,
	marketingv1.EventLeadDisqualified.Name,
	marketingv1.EventLeadConverted.Name,
	marketingv1.EventCampaignCreated.Name,
	marketingv1.EventCampaignUpdated.Name,
	marketingv1.EventCampaignLaunched.Name,
	marketingv1.EventCampaignPaused.Name,
	marketingv1.EventCampaignCompleted.Name,
	marketingv1.EventCustomerCreated.Name,
	marketingv1.EventCustomerUpdated.Name,
	marketingv1.EventCustomerMerged.Name,
	marketingv1.EventCustomerErased.Name,
	marketingv1.EventLifecycleStageChanged.Name,
	marketingv1.EventLifecycleAtRiskChanged.Name,
	marketingv1.EventLoyaltyPointsCredited.Name,
	marketingv1.EventLoyaltyPointsRedeemed.Name,
	marketingv1.EventLoyaltyTierChanged.Name,
	marketingv1.EventReferralCodeCreated.Name,
	marketingv1.EventSegmentCreated.Name,
	marketingv1.EventSegmentDeleted.Name,
	marketingv1.EventLoyaltyProgramUpdated.Name,
	marketingv1.EventScoringRulesUpdated.Name,
	marketingv1.EventLifecycleSettingsUpdated.Name,
	marketingv1.EventLeadsExported.Name,
	marketingv1.EventOperationCancelled.Name,
	salesv1.EventAccountCreated.Name,
	salesv1.EventAccountUpdated.Name,
	salesv1.EventAccountDeleted.Name,
	salesv1.EventContactCreated.Name,
	salesv1.EventContactUpdated.Name,
	salesv1.EventContactDeleted.Name,
	salesv1.EventLeadConverted.Name,
	salesv1.EventPipelineCreated.Name,
	salesv1.EventPipelineUpdated.Name,
	salesv1.EventOpportunityCreated.Name,
	salesv1.EventOpportunityUpdated.Name,
	salesv1.EventOpportunityStageChanged.Name,
	salesv1.EventOpportunityWon.Name,
	salesv1.EventOpportunityLost.Name,
	salesv1.EventOrderPlaced.Name,
	salesv1.EventCustomerValueChanged.Name,
	salesv1.EventActivityCreated.Name,
	salesv1.EventActivityCompleted.Name,
	salesv1.EventAccountsExported.Name,
	salesv1.EventContactsExported.Name,
	salesv1.EventOrdersExported.Name,
	salesv1.EventOperationCancelled.Name,
	productv1.EventProductCreated.Name,
	productv1.EventProductUpdated.Name,
	productv1.EventProductArchived.Name,
	productv1.EventSubscriptionActivated.Name,
	productv1.EventSubscriptionRenewed.Name,
	productv1.EventSubscriptionCanceled.Name,
	productv1.EventSubscriptionExpired.Name,
	productv1.EventEntitlementGranted.Name,
	productv1.EventAdoptionChanged.Name,
	productv1.EventProductsExported.Name,
	productv1.EventOperationCancelled.Name,
	supportv1.EventTicketCreated.Name,
	supportv1.EventTicketUpdated.Name,
	supportv1.EventTicketAssigned.Name,
	supportv1.EventTicketOpened.Name,
	supportv1.EventTicketPended.Name,
	supportv1.EventTicketHeld.Name,
	supportv1.EventTicketSolved.Name,
	supportv1.EventTicketReopened.Name,
	supportv1.EventTicketClosed.Name,
	supportv1.EventTicketSlaBreached.Name,
	supportv1.EventCommentAdded.Name,
	supportv1.EventCsatRated.Name,
	supportv1.EventNpsRecorded.Name,
	supportv1.EventSlaPolicyUpdated.Name,
	supportv1.EventSettingsUpdated.Name,
	supportv1.EventTicketsExported.Name,
	integrationv1.EventWebhookEndpointCreated.Name,
	integrationv1.EventWebhookEndpointUpdated.Name,
	integrationv1.EventWebhookEndpointDeleted.Name,
	integrationv1.EventWebhookEndpointSecretRotated.Name,
	integrationv1.EventWebhookEndpointTested.Name,
	integrationv1.EventDeliveryRetried.Name,
	integrationv1.EventApiKeyCreated.Name,
	integrationv1.EventApiKeyRevoked.Name,
	integrationv1.EventApiKeyRotated.Name,
	integrationv1.EventSettingsUpdated.Name,
}

// eventPrefixes are the prefixes a wildcard may stand on: "sales", "sales.order", ...
var eventPrefixes = func() map[string]bool {
	out := map[string]bool{}
	for _, t := range EventTypes {
		for i := range len(t) {
			if t[i] == '.' {
				out[t[:i]] = true
			}
		}
	}
	return out
}()

// checkEventTypes refuses a filter entry that could never match: a filter with a typo would
// otherwise silently receive nothing.
func checkEventTypes(filter []string) error {
	for i, f := range filter {
		prefix, wildcard := strings.CutSuffix(f, ".*")
		if f == "*" || (wildcard && eventPrefixes[prefix]) || (!wildcard && slices.Contains(EventTypes, f)) {
			continue
		}
		return apierr.Invalid(fmt.Sprintf("webhook_endpoint.event_types[%d]", i), fmt.Sprintf(
			"%q is not an event type: use \"*\", an event type, or a wildcard \"<prefix>.*\" over event types "+
				"(\"sales.*\", \"sales.order.*\"); the event types are %s", f, strings.Join(EventTypes, ", ")))
	}
	return nil
}

// receivingScopes are the scopes an endpoint with filter receives the events of, besides the
// integration.write its change needs: the read scope of each service whose events the filter can
// match ("*" and an empty filter match every service's). Event types start with their service.
func receivingScopes(filter []string) []string {
	var out []string
	for _, svc := range auth.Services {
		if len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return f == "*" || strings.HasPrefix(f, svc+".") }) {
			out = append(out, svc+".read")
		}
	}
	return out
}

// mayReceive refuses, with MISSING_SCOPE naming the scopes, an endpoint whose filter would deliver
// events the caller's key may not read: a key with integration.write alone must not receive
// marketing's leads through a webhook when it cannot read them through the API.
func mayReceive(caller auth.Principal, filter []string) error {
	var missing []string
	for _, s := range receivingScopes(filter) {
		if !caller.Allows(s) {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return apierr.New(apierr.PermissionDenied, auth.ErrMissingScope.Reason, fmt.Sprintf(
		"an endpoint receives the events of its filter, so it needs the read scope of each service whose events the filter "+
			"can match (\"*\" or an empty filter: every service); this key lacks %s", strings.Join(missing, ", "))).
		With("scope", strings.Join(missing, " "))
}
