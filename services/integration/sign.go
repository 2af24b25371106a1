package integration

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// NewSecret is a new signing secret in the Standard Webhooks form: "whsec_" and 32 random bytes
// in base64.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// Sign sets the Standard Webhooks headers of a delivery: webhook-id, webhook-timestamp and
// webhook-signature, one "v1,<signature>" per secret (the current one, and during a rotation's
// overlap the previous one), space-separated.
func Sign(h http.Header, id string, at time.Time, body []byte, secrets ...string) error {
	var sigs []string
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			return err
		}
		sig, err := wh.Sign(id, at, body)
		if err != nil {
			return err
		}
		sigs = append(sigs, sig)
	}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	h.Set("webhook-signature", strings.Join(sigs, " "))
	return nil
}
