package marketingv1

import eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"

// The event types marketing publishes on its stream, each with its payload (most in
// marketing_events.proto; settings changes carry the settings' own message).
var (
	EventLeadCaptured     = eventv1.Type[*LeadCaptured]{Name: "marketing.lead.captured"}
	EventLeadUpdated      = eventv1.Type[*LeadUpdated]{Name: "marketing.lead.updated"}
	EventLeadErased       = eventv1.Type[*LeadErased]{Name: "marketing.lead.erased"}
	EventLeadEngaged      = eventv1.Type[*LeadEngaged]{Name: "marketing.lead.engaged"}
	EventLeadQualified    = eventv1.Type[*LeadQualified]{Name: "marketing.lead.qualified"}
	EventLeadDisqualified = eventv1.Type[*LeadDisqualified]{Name: "marketing.lead.disqualified"}
	EventLeadConverted    = eventv1.Type[*LeadConverted]{Name: "marketing.lead.converted"}

	EventCampaignCreated   = eventv1.Type[*CampaignChanged]{Name: "marketing.campaign.created"}
	EventCampaignUpdated   = eventv1.Type[*CampaignChanged]{Name: "marketing.campaign.updated"}
	EventCampaignLaunched  = eventv1.Type[*CampaignChanged]{Name: "marketing.campaign.launched"}
	EventCampaignPaused    = eventv1.Type[*CampaignChanged]{Name: "marketing.campaign.paused"}
	EventCampaignCompleted = eventv1.Type[*CampaignChanged]{Name: "marketing.campaign.completed"}

	EventCustomerCreated = eventv1.Type[*CustomerChanged]{Name: "marketing.customer.created"}
	EventCustomerUpdated = eventv1.Type[*CustomerChanged]{Name: "marketing.customer.updated"}
	EventCustomerMerged  = eventv1.Type[*CustomerMerged]{Name: "marketing.customer.merged"}
	EventCustomerErased  = eventv1.Type[*CustomerErased]{Name: "marketing.customer.erased"}

	EventLifecycleStageChanged  = eventv1.Type[*LifecycleStageChanged]{Name: "marketing.lifecycle.stage_changed"}
	EventLifecycleAtRiskChanged = eventv1.Type[*CustomerAtRiskChanged]{Name: "marketing.lifecycle.at_risk_changed"}

	EventLoyaltyPointsCredited = eventv1.Type[*LoyaltyPointsBooked]{Name: "marketing.loyalty.points_credited"}
	EventLoyaltyPointsRedeemed = eventv1.Type[*LoyaltyPointsBooked]{Name: "marketing.loyalty.points_redeemed"}
	EventLoyaltyTierChanged    = eventv1.Type[*LoyaltyTierChanged]{Name: "marketing.loyalty.tier_changed"}
	EventReferralCodeCreated   = eventv1.Type[*ReferralCode]{Name: "marketing.referral_code.created"}

	EventSegmentCreated = eventv1.Type[*Segment]{Name: "marketing.segment.created"}
	EventSegmentDeleted = eventv1.Type[*Segment]{Name: "marketing.segment.deleted"}

	EventLoyaltyProgramUpdated = eventv1.Type[*LoyaltyProgram]{Name: "marketing.loyalty_program.updated"}
	EventScoringRulesUpdated   = eventv1.Type[*ScoringRules]{Name: "marketing.scoring_rules.updated"}
	// A new churn window: marketing re-times the tenant's churn schedule on it.
	EventLifecycleSettingsUpdated = eventv1.Type[*LifecycleSettings]{Name: "marketing.lifecycle_settings.updated"}

	// Bulk reads, recorded for the audit log (crm.event.v1.Exported).
	EventLeadsExported = eventv1.Type[*eventv1.Exported]{Name: "marketing.lead.exported"}

	// A cancelled import, recorded for the audit log (crm.event.v1.OperationCancelled).
	EventOperationCancelled = eventv1.Type[*eventv1.OperationCancelled]{Name: "marketing.operation.cancelled"}
)
