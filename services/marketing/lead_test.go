package marketing_test

import (
	"errors"
	"testing"

	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
	typev1 "github.com/crmcycle/crm/proto/crm/type/v1"
	"github.com/crmcycle/crm/services/marketing"
)

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"ada@example.com", "ada@example.com", true},
		{"  Ada@Example.COM \t", "ada@example.com", true},
		{"ada.lovelace+crm@mail.example.org", "ada.lovelace+crm@mail.example.org", true},
		{"", "", false},
		{"ada", "", false},
		{"ada@localhost", "", false},
		{"Ada <ada@example.com>", "", false},
		{"ada@@example.com", "", false},
		{"a da@example.com", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := marketing.NormalizeEmail(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("NormalizeEmail(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && !errors.Is(err, marketing.ErrInvalidEmail) {
				t.Fatalf("error = %v, want ErrInvalidEmail", err)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseLeadFilter(t *testing.T) {
	tests := []struct {
		filter string
		want   marketing.LeadIndex
		ok     bool
	}{
		{"", marketing.LeadIndex{}, true},
		{"   ", marketing.LeadIndex{}, true},
		{"status = LEAD_STATUS_NEW", marketing.LeadIndex{Status: marketingv1.LeadStatus_LEAD_STATUS_NEW}, true},
		{`status="LEAD_STATUS_ENGAGED"`, marketing.LeadIndex{Status: marketingv1.LeadStatus_LEAD_STATUS_ENGAGED}, true},
		{"channel = CHANNEL_WEB", marketing.LeadIndex{Channel: typev1.Channel_CHANNEL_WEB}, true},
		{"channel = CHANNEL_UNSPECIFIED", marketing.LeadIndex{}, false},
		{"status = LEAD_STATUS_BOGUS", marketing.LeadIndex{}, false},
		{"score > 10", marketing.LeadIndex{}, false},
		{"status = LEAD_STATUS_NEW AND channel = CHANNEL_WEB", marketing.LeadIndex{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			got, err := marketing.ParseLeadFilter(tt.filter)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseLeadFilter(%q) error = %v, want ok=%v", tt.filter, err, tt.ok)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
