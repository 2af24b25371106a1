package sales

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// SearchTexts are the texts of a record that search reads: an account's name, a contact's given
// and family name.
func SearchTexts(m proto.Message) []string {
	switch r := m.(type) {
	case *Account:
		return []string{r.GetDisplayName()}
	case *Contact:
		return []string{r.GetGivenName() + " " + r.GetFamilyName()}
	}
	return nil
}

// Keeps is whether a record read through member of the index belongs to the list: it has the
// pair's other field, and a search reached it through the one member it counts through.
func (ix Index) Keeps(member string, m interface {
	proto.Message
	GetId() string
}) bool {
	if len(ix.Also) == 2 {
		fd := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(ix.Also[0]))
		if fd == nil || m.ProtoReflect().Get(fd).String() != ix.Also[1] {
			return false
		}
	}
	if ix.Search == "" {
		return true
	}
	matched, ok := ix.Search.Match(m.GetId(), SearchTexts(m)...)
	return ok && matched == member
}
