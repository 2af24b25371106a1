package marketingclient

import "github.com/crmcycle/crm/pkg/apierr"

// errMarketingDenied is the caller's key lacking marketing.read: converting reads the lead with
// the caller's own credential.
var errMarketingDenied = apierr.New(apierr.PermissionDenied, "MISSING_SCOPE",
	"converting a lead reads it from marketing: the API key needs the marketing.read scope")

// errRegistryDenied is the caller's key lacking marketing.read: creating a contact resolves the
// person in marketing's registry with the caller's own credential.
var errRegistryDenied = apierr.New(apierr.PermissionDenied, "MISSING_SCOPE",
	"creating a contact resolves the person in marketing's identity registry: the API key needs the marketing.read scope")

// errAttachDenied is the caller's key lacking marketing.read: changing a contact's e-mail attaches
// it to the person in marketing's registry with the caller's own credential.
var errAttachDenied = apierr.New(apierr.PermissionDenied, "MISSING_SCOPE",
	"changing a contact's e-mail attaches it to the person in marketing's identity registry: the API key needs the marketing.read scope")
