package commit

import "slices"

// Entry is one member of a sorted-set index: the index's key, the member, and its score (0 in an
// index ordered by member).
type Entry struct {
	Index, Member string
	Score         float64
	Bucketed      bool // the index is a bucketed index (bucket.go); Score is then 0
}

// Move turns a resource's index entries from old to new: entries only in old are removed, entries
// only in new added (or moved to their new score); entries in both are left alone.
func (w *Write) Move(old, new []Entry) *Write {
	for _, e := range old {
		if !slices.ContainsFunc(new, func(n Entry) bool { return n.Index == e.Index && n.Member == e.Member }) {
			w.remove(e)
		}
	}
	for _, e := range new {
		if !slices.Contains(old, e) {
			w.add(e)
		}
	}
	return w
}

func (w *Write) add(e Entry) {
	if e.Bucketed {
		w.BucketAdd(e.Index, e.Member)
	} else {
		w.ZAdd(e.Index, e.Score, e.Member)
	}
}

func (w *Write) remove(e Entry) {
	if e.Bucketed {
		w.BucketRem(e.Index, e.Member)
	} else {
		w.ZRem(e.Index, e.Member)
	}
}
