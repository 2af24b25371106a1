package servicetest

import "sync"

// AtOnce runs calls side by side, released together from a start barrier, and returns their
// errors in order: for tests of two (or more) requests at once.
func AtOnce(calls ...func() error) []error {
	start := make(chan struct{})
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() {
			<-start
			errs[i] = call()
		})
	}
	close(start)
	wg.Wait()
	return errs
}
