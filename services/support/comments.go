package support

import (
	"context"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/crmcycle/crm/proto/crm/support/v1"

	"github.com/crmcycle/crm/pkg/page"
)

// AddComment adds a public reply or an internal note to a ticket that is not CLOSED; author is
// who wrote it when the comment does not say. A public reply by an agent opens a NEW ticket. The
// first public reply by an agent stops the first-response clock (a late one is a breach, recorded with its event if the sweep has not yet).
// The comment commits with a check that the ticket did not change, so it never lands on a ticket
// closed in the meantime, and concurrent comments all land, each once.
func (s *Tickets) AddComment(ctx context.Context, tenant, ticketID string, in *Comment, author string) (*Comment, error) {
	id := uuid.Must(uuid.NewV7()).String()
	_, comment, err := s.change(ctx, tenant, ticketID, "", func(t *Ticket, now time.Time, c *changes) error {
		if t.GetStatus() == supportv1.TicketStatus_TICKET_STATUS_CLOSED {
			return refusedStatus(t.GetStatus(), "comment on", closedNeeds)
		}
		c.comment = &Comment{
			Id: id, TicketId: ticketID, Body: in.GetBody(), Internal: in.GetInternal(),
			AuthorId: in.GetAuthorId(), CustomerAuthored: in.GetCustomerAuthored(), CreateTime: timestamppb.New(now),
		}
		if c.comment.AuthorId == "" {
			c.comment.AuthorId = author
		}
		agentReply := !in.GetInternal() && !in.GetCustomerAuthored()
		first := agentReply && t.GetFirstResponse().GetMetTime() == nil
		if first {
			t.FirstResponse.MetTime = timestamppb.New(now)
			c.touched = true
		}
		if agentReply && t.GetStatus() == supportv1.TicketStatus_TICKET_STATUS_NEW {
			// An agent answering is an agent working on it: NEW -> OPEN, as a :open would, in the
			// same commit (Zendesk does the same), so a replied ticket never sits in the NEW queue.
			if err := moveTicket(t, MoveOpen, now, 0, c); err != nil {
				return err
			}
		}
		c.events = append(c.events, supportv1.EventCommentAdded.Of(
			&supportv1.CommentAdded{CommentId: id, Internal: in.GetInternal(), FirstResponse: first}))
		return nil
	})
	return comment, err
}

// ListComments returns a page of a ticket's comments, oldest first.
func (s *Tickets) ListComments(ctx context.Context, tenant, ticketID string, p page.Request) (page.Page[*Comment], error) {
	if _, err := s.store.GetTicket(ctx, tenant, ticketID); err != nil {
		return page.Page[*Comment]{}, err
	}
	return s.store.ListComments(ctx, tenant, ticketID, p)
}
