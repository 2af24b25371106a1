package gateway

import (
	"context"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

var statusName = (&status.Status{}).ProtoReflect().Descriptor().FullName()

// restItemErrors names the fields of a batch's per-item errors as REST requests name them
// (requests[0].contact.accountId, not account_id), as writeJSONError does for a call's own error: a
// batch answer's results carry each item's google.rpc.Status, written by the service in proto names.
func restItemErrors(_ context.Context, _ http.ResponseWriter, m proto.Message) error {
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if !fd.IsList() || fd.Message() == nil {
			return true
		}
		list := v.List()
		for i := range list.Len() {
			list.Get(i).Message().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
				if fd.Message() != nil && fd.Message().FullName() == statusName && !fd.IsList() {
					camelViolations(v.Message().Interface())
				}
				return true
			})
		}
		return true
	})
	return nil
}

// camelViolations rewrites the field violations of a google.rpc.Status's BadRequest details.
func camelViolations(m proto.Message) {
	st, ok := m.(*status.Status)
	if !ok {
		return
	}
	for i, d := range st.GetDetails() {
		br := new(errdetails.BadRequest)
		if !d.MessageIs(br) || d.UnmarshalTo(br) != nil {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			v.Field = camelPath(v.GetField())
		}
		st.Details[i] = mustAny(br)
	}
}
