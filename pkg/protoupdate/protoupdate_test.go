package protoupdate_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmcycle/crm/pkg/apierr"
	"github.com/crmcycle/crm/pkg/protoupdate"
	salesv1 "github.com/crmcycle/crm/proto/crm/sales/v1"
)

var updatable = []string{"display_name", "owner_id", "industry"}

func names(t *testing.T, in *salesv1.Account, mask *fieldmaskpb.FieldMask) []string {
	t.Helper()
	fields, err := protoupdate.Fields(in, mask, updatable, "update_mask")
	if err != nil {
		t.Fatalf("Fields(%v, %v): %v", in, mask, err)
	}
	out := []string{}
	for _, fd := range fields.Fields {
		out = append(out, string(fd.Name()))
	}
	return out
}

func TestFields(t *testing.T) {
	if got := names(t, &salesv1.Account{}, &fieldmaskpb.FieldMask{Paths: []string{"display_name", "ownerId"}}); !slices.Equal(got, []string{"display_name", "owner_id"}) {
		t.Errorf("proto and JSON names: got %v, want [display_name owner_id]", got)
	}
	// AIP-134: without a mask, the updatable fields the request's resource sets, in updatable's
	// order; the id, the etag and a field that is not updatable (domain) are not among them.
	partial := &salesv1.Account{Id: "a", Industry: "retail", DisplayName: "Acme", Domain: "acme.example", Etag: "3"}
	for _, mask := range []*fieldmaskpb.FieldMask{nil, {}, {Paths: []string{}}} {
		if got := names(t, partial, mask); !slices.Equal(got, []string{"display_name", "industry"}) {
			t.Errorf("mask %v: got %v, want the populated updatable fields [display_name industry]", mask, got)
		}
		if got := names(t, &salesv1.Account{Id: "a", Etag: "3"}, mask); len(got) != 0 {
			t.Errorf("mask %v, nothing set: got %v, want no fields", mask, got)
		}
	}
	if got := names(t, partial, &fieldmaskpb.FieldMask{Paths: []string{"owner_id"}}); !slices.Equal(got, []string{"owner_id"}) {
		t.Errorf("a mask naming an unset field: got %v, want [owner_id] (to clear it)", got)
	}
	for _, path := range []string{"create_time", "updateTime", "id", "etag", "colour", "", "*,display_name"} {
		_, err := protoupdate.Fields(&salesv1.Account{}, &fieldmaskpb.FieldMask{Paths: strings.Split(path, ",")}, updatable, "update_mask")
		e, ok := apierr.As(err)
		if !ok || e.Kind != apierr.InvalidArgument || e.Fields[0].Field != "update_mask" {
			t.Errorf("path %q: got %v, want INVALID_ARGUMENT on update_mask", path, err)
		}
		if path != "*,display_name" && !strings.Contains(e.Fields[0].Description, "cannot update "+path+"; updatable: displayName, ownerId, industry") {
			t.Errorf("path %q: got %q, want it named with the updatable fields", path, e.Fields[0].Description)
		}
	}
}

// TestImplied: without a mask, a resource read and sent back whole (AIP-203) updates the
// updatable fields it sets, ignores the output-only ones, and accepts a field it may not change
// only with the stored value.
func TestImplied(t *testing.T) {
	stored := &salesv1.Account{Id: "a", DisplayName: "Old", Domain: "acme.example", Industry: "retail", Etag: "3",
		CreateTime: timestamppb.New(time.Unix(1, 0)), UpdateTime: timestamppb.New(time.Unix(2, 0))}
	edited := proto.CloneOf(stored)
	edited.DisplayName, edited.CreateTime = "New", timestamppb.New(time.Unix(9, 0))
	for _, mask := range []*fieldmaskpb.FieldMask{nil, {Paths: []string{"display_name", "domain"}}} {
		fields, err := protoupdate.Fields(edited, mask, updatable, "update_mask")
		if err != nil {
			t.Fatalf("mask %v: %v", mask, err)
		}
		got := proto.CloneOf(stored)
		if err := protoupdate.Apply(got, edited, fields); err != nil {
			t.Fatalf("mask %v: %v", mask, err)
		}
		want := proto.CloneOf(stored)
		want.DisplayName = "New"
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("mask %v: only display_name changes (-want +got):\n%s", mask, diff)
		}
		changed := proto.CloneOf(edited)
		changed.Domain = "other.example"
		fields, err = protoupdate.Fields(changed, mask, updatable, "update_mask")
		if err != nil {
			t.Fatalf("mask %v: %v", mask, err)
		}
		got = proto.CloneOf(stored)
		err = protoupdate.Apply(got, changed, fields)
		if e, ok := apierr.As(err); !ok || e.Kind != apierr.InvalidArgument || !strings.Contains(e.Fields[0].Description, "cannot update domain") {
			t.Errorf("mask %v, a changed field it may not update: got %v, want INVALID_ARGUMENT naming domain", mask, err)
		}
		if !proto.Equal(got, stored) {
			t.Errorf("mask %v: a refused Apply changed dst: %v", mask, got)
		}
	}
}

// TestReplace: "*" copies every updatable field, clearing those the request leaves unset.
func TestReplace(t *testing.T) {
	stored := &salesv1.Account{Id: "a", DisplayName: "Old", OwnerId: "ada", Industry: "retail", Domain: "acme.example"}
	in := &salesv1.Account{Id: "a", DisplayName: "New", UpdateTime: timestamppb.Now()}
	fields, err := protoupdate.Fields(in, &fieldmaskpb.FieldMask{Paths: []string{"*"}}, updatable, "update_mask")
	if err != nil {
		t.Fatal(err)
	}
	if err := protoupdate.Apply(stored, in, fields); err != nil {
		t.Fatal(err)
	}
	want := &salesv1.Account{Id: "a", DisplayName: "New", Domain: "acme.example"}
	if diff := cmp.Diff(want, stored, protocmp.Transform()); diff != "" {
		t.Errorf("updatable fields replaced, the others kept (-want +got):\n%s", diff)
	}
}

func TestApply(t *testing.T) {
	dst := &salesv1.Account{Id: "a", DisplayName: "Old", OwnerId: "ada", Industry: "retail", Domain: "old.example"}
	src := &salesv1.Account{Id: "ignored", DisplayName: "New", Domain: "ignored.example"}
	fields, err := protoupdate.Fields(dst, &fieldmaskpb.FieldMask{Paths: []string{"displayName", "owner_id"}}, updatable, "update_mask")
	if err != nil {
		t.Fatal(err)
	}
	if err := protoupdate.Apply(dst, src, fields); err != nil {
		t.Fatal(err)
	}
	want := &salesv1.Account{Id: "a", DisplayName: "New", Industry: "retail", Domain: "old.example"}
	if diff := cmp.Diff(want, dst, protocmp.Transform()); diff != "" {
		t.Errorf("named fields copied, an unset one cleared, the rest kept (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := protoupdate.Validate(v, "account", &salesv1.Account{DisplayName: "Acme"}); err != nil {
		t.Errorf("a valid account: %v", err)
	}
	err = protoupdate.Validate(v, "account", &salesv1.Account{OwnerId: "not allowed!"})
	e, ok := apierr.As(err)
	if !ok || e.Kind != apierr.InvalidArgument {
		t.Fatalf("an invalid account: %v, want INVALID_ARGUMENT", err)
	}
	var got []string
	for _, f := range e.Fields {
		got = append(got, f.Field)
	}
	slices.Sort(got)
	if want := []string{"account.display_name", "account.owner_id"}; !slices.Equal(got, want) {
		t.Errorf("violations on %v, want %v", got, want)
	}
}

func TestMerge(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	stale := errors.New("stale")
	current := &salesv1.Account{Id: "a", DisplayName: "Old", Industry: "retail", Etag: "3"}
	fields, err := protoupdate.Fields(current, &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}, updatable, "update_mask")
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"", "3"} {
		merged, err := protoupdate.Merge(v, "account", current, &salesv1.Account{DisplayName: "New", Industry: "ignored", Etag: tag}, fields, stale)
		want := &salesv1.Account{Id: "a", DisplayName: "New", Industry: "retail", Etag: "3"}
		if err != nil || !cmp.Equal(want, merged, protocmp.Transform()) {
			t.Errorf("etag %q: got %v, %v, want %v", tag, merged, err, want)
		}
	}
	if _, err := protoupdate.Merge(v, "account", current, &salesv1.Account{DisplayName: "New", Etag: "2"}, fields, stale); !errors.Is(err, stale) {
		t.Errorf("an etag that is not current's: got %v, want the stale error", err)
	}
	_, err = protoupdate.Merge(v, "account", current, &salesv1.Account{DisplayName: ""}, fields, stale)
	if e, ok := apierr.As(err); !ok || e.Kind != apierr.InvalidArgument || e.Fields[0].Field != "account.display_name" {
		t.Errorf("a merge that empties a required field: got %v, want INVALID_ARGUMENT on account.display_name", err)
	}
	if current.GetDisplayName() != "Old" {
		t.Errorf("Merge changed current: %v", current)
	}
}
