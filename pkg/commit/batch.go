package commit

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/crmcycle/crm/pkg/keyspace"
)

// BatchWrites is how many writes one call of RunBatch's script runs at most. The script blocks
// Redis while it runs: 32 writes of a new lead (its record, e-mail, indexes, customer, lifecycle and
// three events) take about 4 ms of Redis CPU on the bench's VM, the order of a slow command. Larger
// calls gained next to nothing (BenchmarkImport, redis-µs/row: 16 181, 32 158, 64 155, 128 161),
// while each write as a call of its own costs about 20 µs more (bench/README.md, "Import writes").
const BatchWrites = 32

// batchPipeline is how many script calls one pipeline of RunBatch sends: a reply must arrive
// within the client's read timeout, which a long pipeline may outlast on a busy server.
const batchPipeline = 8

// RunBatch executes writes (a bulk import's batch) in script calls of up to BatchWrites writes
// each, pipelined: each write is still atomic and all or nothing on its own, its checks before its
// effects, and a write refused by a check writes nothing while the others go on. errs holds each
// write's outcome as Run would return it; err is a failure of a round trip itself, after which the
// outcomes are unknown. One call's writes share a hash tag, so it runs on one Redis Cluster node:
// writes of other tags go to calls of their own.
func RunBatch(ctx context.Context, rdb redis.UniversalClient, writes []*Write) (errs []error, err error) {
	errs = make([]error, len(writes))
	var calls []*batchCall
	open := map[string]*batchCall{} // the call filling up, per hash tag
	for i, w := range writes {
		switch {
		case w.err != nil:
			errs[i] = w.err
			continue
		case w.ops == 0:
			continue
		case w.ran:
			errs[i] = errors.New("commit: a write runs once")
			continue
		}
		w.ran = true
		tag := ""
		if len(w.keys) > 0 {
			tag = hashTag(w.keys[0])
		}
		c := open[tag]
		if c == nil || len(c.at) == BatchWrites {
			// Sized for writes like this one: grown by appends, the arguments cost about 2 KiB
			// more per write.
			size := 2 + min(len(writes)-i, BatchWrites)*(len(w.args)-1)
			c = &batchCall{tag: tag, index: map[string]int{}, args: append(make([]any, 0, size), "", 0)}
			open[tag] = c
			calls = append(calls, c)
		}
		c.add(i, w)
	}
	for _, c := range calls {
		c.markMerged()
		if keyspace.IsPartitionTag(c.tag) {
			// The partition's marker, checked once for the call, is the last key.
			c.keys, c.args[0] = append(c.keys, keyspace.MarkerKey(c.tag)), "marked"
		}
	}
	for from := 0; from < len(calls); from += batchPipeline {
		part := calls[from:min(from+batchPipeline, len(calls))]
		send := part
		for attempt := 0; ; attempt++ {
			_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, c := range send {
					c.cmd = p.EvalSha(ctx, batchScript.Hash(), c.keys, c.args...)
				}
				return nil
			})
			// After a restart of Redis the script is not loaded: load it and send the calls that
			// did not run, and only those. Another client may have loaded it while the pipeline
			// ran, so the calls after that point did run, and a call must run once.
			var again []*batchCall
			for _, c := range send {
				if redis.HasErrorPrefix(c.cmd.Err(), "NOSCRIPT") {
					again = append(again, c)
				}
			}
			if len(again) == 0 || attempt > 0 {
				break
			}
			if lerr := batchScript.Load(ctx, rdb).Err(); lerr != nil {
				return nil, fmt.Errorf("commit: %w", lerr)
			}
			send = again
		}
		for _, c := range part {
			if err := c.results(errs); err != nil {
				return nil, err
			}
		}
	}
	return errs, nil
}

// batchCall is one call of the batch script: its writes' keys, each once, and their operations,
// with key arguments as indexes into those keys.
type batchCall struct {
	tag   string
	at    []int          // the writes' places in RunBatch's writes
	keys  []string       // KEYS
	index map[string]int // a key's index in keys, from 1
	uses  []keyUse       // what the call's operations do to each key, by index from 1
	args  []any          // marker flag, write count, then each write: op count, ops
	cmd   *redis.Cmd
}

// mergeable are the operations batch.lua can merge across a call's writes, with the codes that
// mark them merged. A key that takes only one of them in the call, and nothing else (no check, no
// other effect), gets one command at the end of the call instead of one per write: a ZADD or HSET
// of all the pairs, an HINCRBY per field of the summed increments. An import's search indexes,
// stage index, funnel counters and customer-leads map are such keys: about a dozen commands a row
// fewer.
var mergeable = map[string]string{"zadd": "mzadd", "hincr": "mhincr", "hset": "mhset"}

// keyUse is what a call's operations do to a key: the code of the first, whether another code
// followed, and where the codes of a mergeable one's operations are in the call's arguments.
type keyUse struct {
	code  string
	mixed bool
	codes []int
}

// use records an operation of code on the key of index k, its code at args[pos].
func (c *batchCall) use(k int, code string, pos int) {
	for len(c.uses) < k {
		c.uses = append(c.uses, keyUse{})
	}
	u := &c.uses[k-1]
	switch {
	case u.code == "":
		u.code = code
	case u.code != code:
		u.mixed = true
	}
	if _, ok := mergeable[code]; ok && !u.mixed {
		u.codes = append(u.codes, pos)
	}
}

// markMerged gives the operations on keys that only take one mergeable operation their merged
// code.
func (c *batchCall) markMerged() {
	for _, u := range c.uses {
		if to, ok := mergeable[u.code]; ok && !u.mixed {
			for _, pos := range u.codes {
				c.args[pos] = to
			}
		}
	}
}

// add appends write w, the i-th of the batch, renumbering its key arguments into the call's keys.
func (c *batchCall) add(i int, w *Write) {
	c.at = append(c.at, i)
	c.args[1] = len(c.at)
	c.args = append(c.args, w.ops)
	// w.args: marker flag, op count, then per op its code, argument count and arguments; every op
	// but pub has its key's index in w.keys first.
	for pos := 2; pos < len(w.args); {
		code, argc := w.args[pos].(string), w.args[pos+1].(int)
		args := w.args[pos+2 : pos+2+argc]
		at := len(c.args)
		c.args = append(c.args, code, argc)
		if code != "pub" {
			k := c.key(w.keys[args[0].(int)-1])
			c.use(k, code, at)
			c.args = append(c.args, k)
			args = args[1:]
		}
		c.args = append(c.args, args...)
		pos += 2 + argc
	}
	w.recycle()
}

// key is the index of k in the call's keys, adding it on first use.
func (c *batchCall) key(k string) int {
	if i, ok := c.index[k]; ok {
		return i
	}
	c.keys = append(c.keys, k)
	c.index[k] = len(c.keys)
	return len(c.keys)
}

// results sets the outcome of each of the call's writes in errs, or returns the failure of the
// round trip.
func (c *batchCall) results(errs []error) error {
	replies, err := c.cmd.Slice()
	if err != nil {
		if !isReply(err) {
			return fmt.Errorf("commit: %w", err)
		}
		for _, i := range c.at { // the script failed as a whole
			errs[i] = fmt.Errorf("commit: %w", err)
		}
		return nil
	}
	if len(replies) != len(c.at) {
		return fmt.Errorf("commit: %d replies to a batch of %d writes", len(replies), len(c.at))
	}
	for j, r := range replies {
		items, _ := r.([]any)
		res := make([]string, len(items))
		for k, item := range items {
			res[k], _ = item.(string)
		}
		if len(res) == 0 {
			errs[c.at[j]] = fmt.Errorf("commit: unexpected script reply %v", r)
			continue
		}
		if res[0] == "error" && len(res) > 1 {
			errs[c.at[j]] = fmt.Errorf("commit: %s", res[1])
			continue
		}
		errs[c.at[j]] = result(res)
	}
	return nil
}
