package integrationv1

import eventv1 "github.com/crmcycle/crm/proto/crm/event/v1"

// The integration service's event types, with their payloads.
var (
	EventWebhookEndpointCreated       = eventv1.Type[*WebhookEndpointChanged]{Name: "integration.webhook_endpoint.created"}
	EventWebhookEndpointUpdated       = eventv1.Type[*WebhookEndpointChanged]{Name: "integration.webhook_endpoint.updated"}
	EventWebhookEndpointDeleted       = eventv1.Type[*WebhookEndpointChanged]{Name: "integration.webhook_endpoint.deleted"}
	EventWebhookEndpointSecretRotated = eventv1.Type[*WebhookEndpointChanged]{Name: "integration.webhook_endpoint.secret_rotated"}
	EventWebhookEndpointTested        = eventv1.Type[*WebhookEndpointChanged]{Name: "integration.webhook_endpoint.tested"}
	EventDeliveryRetried              = eventv1.Type[*DeliveryRetried]{Name: "integration.delivery.retried"}
	EventApiKeyCreated                = eventv1.Type[*ApiKeyChanged]{Name: "integration.api_key.created"}
	EventApiKeyRevoked                = eventv1.Type[*ApiKeyChanged]{Name: "integration.api_key.revoked"}
	EventApiKeyRotated                = eventv1.Type[*ApiKeyChanged]{Name: "integration.api_key.rotated"}
	EventSettingsUpdated              = eventv1.Type[*SettingsChanged]{Name: "integration.settings.updated"}
)
