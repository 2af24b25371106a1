package redisconn

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Follow listens on a pub/sub channel until ctx is done, giving each message's payload to
// onMessage. Pub/sub keeps nothing for a listener that is away, so onGap runs whenever the
// subscription starts or restarts and whenever it breaks (go-redis reconnects on the next
// receive): a cache that follows a channel forgets everything then, since what was published
// meanwhile is unknown. every, if not nil, runs between messages about once a second.
//
// This is how a process hears of changes that must reach every replica at once (revoked API keys,
// erased and merged customers): the write that makes the change publishes in the same script.
func Follow(ctx context.Context, rdb redis.UniversalClient, channel string, onMessage func(payload string), onGap func(), every func()) {
	sub := rdb.Subscribe(ctx, channel)
	defer sub.Close()
	for ctx.Err() == nil {
		msg, err := sub.ReceiveTimeout(ctx, time.Second)
		switch m := msg.(type) {
		case *redis.Subscription: // (re)subscribed: what was published meanwhile is unknown
			onGap()
		case *redis.Message:
			onMessage(m.Payload)
		}
		if err != nil && !isTimeout(err) && ctx.Err() == nil {
			onGap() // disconnected: go-redis reconnects on the next receive
			pause(ctx, 100*time.Millisecond)
		}
		if every != nil {
			every()
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
