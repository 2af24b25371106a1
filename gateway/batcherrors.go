package gateway

import (
	"context"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

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
				if fd.Message() == nil || fd.IsList() || fd.IsMap() {
					return true
				}
				if st, ok := v.Message().Interface().(*status.Status); ok {
					for i, d := range st.GetDetails() {
						st.Details[i] = restDetail(d, &st.Message)
					}
				}
				return true
			})
		}
		return true
	})
	return nil
}
