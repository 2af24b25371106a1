// Package pagesize is the one page-size rule of every list (AIP-158): an unset size is the
// default, and a size above the maximum is lowered to it rather than refused.
package pagesize

// The sizes of a page.
const (
	Default = 50
	Max     = 1000
	// Export is how many items an export reads, and sends as one stream message, at a time.
	Export = 500
)

// Of is the number of items a page holds for a requested page_size.
func Of(requested int32) int {
	switch {
	case requested <= 0:
		return Default
	case requested > Max:
		return Max
	default:
		return int(requested)
	}
}
