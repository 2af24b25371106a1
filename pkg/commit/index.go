package commit

import "slices"

// Entry is one member of a sorted-set index: the index's key, the member, and its score (0 in an
// index ordered by member).
type Entry struct {
	Index, Member string
	Score         float64
}

// Move turns a resource's index entries from old to new: entries only in old are removed, entries
// only in new added (or moved to their new score); entries in both are left alone.
func (w *Write) Move(old, new []Entry) *Write {
	for _, e := range old {
		if !slices.ContainsFunc(new, func(n Entry) bool { return n.Index == e.Index && n.Member == e.Member }) {
			w.ZRem(e.Index, e.Member)
		}
	}
	for _, e := range new {
		if !slices.Contains(old, e) {
			w.ZAdd(e.Index, e.Score, e.Member)
		}
	}
	return w
}
