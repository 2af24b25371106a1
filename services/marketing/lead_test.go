package marketing_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crmcycle/crm/pkg/apierr"

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

func TestParseLeadList(t *testing.T) {
	const camp = "01a20b45-2a28-7f41-b702-1121b1b3b663"
	tests := []struct {
		filter, orderBy string
		want            marketing.LeadQuery
		errField        string // the field an error names; "" when the query is valid
	}{
		{"", "", marketing.LeadQuery{}, ""},
		{"   ", "create_time desc", marketing.LeadQuery{}, ""},
		{"status = LEAD_STATUS_NEW", "", marketing.LeadQuery{Filter: marketing.LeadFilter{Status: marketingv1.LeadStatus_LEAD_STATUS_NEW}}, ""},
		{`status="LEAD_STATUS_ENGAGED"`, "score desc", marketing.LeadQuery{Filter: marketing.LeadFilter{Status: marketingv1.LeadStatus_LEAD_STATUS_ENGAGED}, ByScore: true}, ""},
		{"channel = CHANNEL_WEB", "", marketing.LeadQuery{Filter: marketing.LeadFilter{Channel: typev1.Channel_CHANNEL_WEB}}, ""},
		{`campaignId = "` + camp + `"`, "", marketing.LeadQuery{Filter: marketing.LeadFilter{Campaign: camp}}, ""},
		{`tags:"vip"`, "", marketing.LeadQuery{Filter: marketing.LeadFilter{Tag: "vip"}}, ""},
		{`tags:"a AND b"`, "", marketing.LeadQuery{Filter: marketing.LeadFilter{Tag: "a AND b"}}, ""},
		{`campaign_id = "` + strings.ToUpper(camp) + `"`, "", marketing.LeadQuery{Filter: marketing.LeadFilter{Campaign: camp}}, ""},
		{"score = 7", "", marketing.LeadQuery{Filter: marketing.LeadFilter{Score: &marketing.ScoreRange{Min: 7, Max: 7}}, ByScore: true}, ""},
		{"score <= 7 AND status = LEAD_STATUS_NEW", "", marketing.LeadQuery{ByScore: true,
			Filter: marketing.LeadFilter{Status: marketingv1.LeadStatus_LEAD_STATUS_NEW, Score: &marketing.ScoreRange{Min: 0, Max: 7}}}, ""},
		{"score >= 10 AND score < 20", "", marketing.LeadQuery{Filter: marketing.LeadFilter{Score: &marketing.ScoreRange{Min: 10, Max: 19}}, ByScore: true}, ""},
		{"status = LEAD_STATUS_NEW AND score > 5", "score desc", marketing.LeadQuery{ByScore: true,
			Filter: marketing.LeadFilter{Status: marketingv1.LeadStatus_LEAD_STATUS_NEW, Score: &marketing.ScoreRange{Min: 6, Max: math.MaxInt32}}}, ""},
		{"channel = CHANNEL_UNSPECIFIED", "", marketing.LeadQuery{}, "filter"},
		{"status = LEAD_STATUS_BOGUS", "", marketing.LeadQuery{}, "filter"},
		{"status = LEAD_STATUS_NEW AND channel = CHANNEL_WEB", "", marketing.LeadQuery{}, "filter"},
		{"channel = CHANNEL_WEB AND score > 3", "", marketing.LeadQuery{}, "filter"},
		{"campaign_id = nope", "", marketing.LeadQuery{}, "filter"},
		{"score > -1", "", marketing.LeadQuery{}, "filter"},
		{"score > 2147483648", "", marketing.LeadQuery{}, "filter"},
		{"score > 1 AND score > 2", "", marketing.LeadQuery{}, "filter"},
		{"status != LEAD_STATUS_NEW", "", marketing.LeadQuery{}, "filter"},
		{`tags = "vip"`, "", marketing.LeadQuery{}, "filter"},
		{"email = a@b.c", "", marketing.LeadQuery{}, "filter"},
		{"status = LEAD_STATUS_NEW OR status = LEAD_STATUS_ENGAGED", "", marketing.LeadQuery{}, "filter"},
		{"score > 3", "create_time desc", marketing.LeadQuery{}, "order_by"},
		{`tags:"vip"`, "score desc", marketing.LeadQuery{}, "order_by"},
		{"", "email", marketing.LeadQuery{}, "order_by"},
	}
	for _, tt := range tests {
		t.Run(tt.filter+"|"+tt.orderBy, func(t *testing.T) {
			got, err := marketing.ParseLeadList(tt.filter, tt.orderBy)
			if tt.errField != "" {
				e, ok := apierr.As(err)
				if !ok || e.Kind != apierr.InvalidArgument || len(e.Fields) != 1 || e.Fields[0].Field != tt.errField {
					t.Fatalf("ParseLeadList(%q, %q) = %v, want INVALID_ARGUMENT naming %s", tt.filter, tt.orderBy, err, tt.errField)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLeadList(%q, %q): %v", tt.filter, tt.orderBy, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}
