package client_test

import (
	"context"
	"fmt"
	"log"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmcycle/crm/proto/client"
	marketingv1 "github.com/crmcycle/crm/proto/crm/marketing/v1"
)

// Capture a lead, safely retried with an idempotency key.
func ExampleMarketing() {
	leads, closeConn, err := client.Marketing("localhost:9090", "crm_dev_key")
	if err != nil {
		log.Fatal(err)
	}
	defer closeConn()
	ctx := client.WithIdempotencyKey(context.Background(), "signup-form-7f3a")
	r, err := leads.CaptureLead(ctx, &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: "ada@example.com"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.GetLead().GetId())
}

// An invalid request is INVALID_ARGUMENT with a google.rpc.BadRequest naming the fields.
func ExampleMarketing_badRequest() {
	leads, closeConn, err := client.Marketing("localhost:9090", "crm_dev_key")
	if err != nil {
		log.Fatal(err)
	}
	defer closeConn()
	_, err = leads.CaptureLead(context.Background(), &marketingv1.CaptureLeadRequest{Lead: &marketingv1.Lead{Email: ""}})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		log.Fatal(err)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fmt.Println(v.GetField(), v.GetDescription()) // lead.email value is required
			}
		}
	}
}

// List every lead of a filter, a page at a time.
func ExampleMarketing_paging() {
	leads, closeConn, err := client.Marketing("localhost:9090", "crm_dev_key")
	if err != nil {
		log.Fatal(err)
	}
	defer closeConn()
	req := &marketingv1.ListLeadsRequest{Filter: "status = LEAD_STATUS_NEW", PageSize: 100}
	for {
		page, err := leads.ListLeads(context.Background(), req)
		if err != nil {
			log.Fatal(err)
		}
		for _, l := range page.GetLeads() {
			fmt.Println(l.GetEmail())
		}
		if page.GetNextPageToken() == "" {
			break
		}
		req.PageToken = page.GetNextPageToken()
	}
}
