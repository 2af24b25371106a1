package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"golang.org/x/sync/errgroup"
)

// A module is one part of a process (see modules.go for the table), after Grafana Mimir's module
// manager: the targets select modules, their dependencies are pulled in, and modules are built in
// dependency order and stopped in reverse.
type module struct {
	// deps are built before the module and stopped after it; selecting the module selects them.
	deps []string
	// after are built before the module and stopped after it when the targets select them, but
	// selecting the module does not select them.
	after []string
	// init builds the module from the ones built before it.
	init func(ctx context.Context) (service, error)
}

// service is what a built module leaves running and holding; both are optional.
type service struct {
	// run serves until its context is canceled, then drains and returns.
	run func(ctx context.Context) error
	// close releases what the module holds, once no module runs any more.
	close func() error
}

// built is a module that init built.
type built struct {
	name string
	service
}

// resolve returns the modules that targets need, each after the modules it depends on. Unrelated
// modules come in name order, so the order is the same on every start.
func resolve(table map[string]module, targets []string) ([]string, error) {
	selected := map[string]bool{}
	var selectWithDeps func(name string) error
	selectWithDeps = func(name string) error {
		m, ok := table[name]
		if !ok {
			return fmt.Errorf("unknown module %q", name)
		}
		if selected[name] {
			return nil
		}
		selected[name] = true
		for _, d := range m.deps {
			if err := selectWithDeps(d); err != nil {
				return err
			}
		}
		return nil
	}
	for _, t := range targets {
		if err := selectWithDeps(t); err != nil {
			return nil, err
		}
	}

	var order []string
	const visiting, done = 1, 2
	state := map[string]int{}
	var visit func(name string) error
	visit = func(name string) error {
		switch state[name] {
		case visiting:
			return fmt.Errorf("module %q depends on itself", name)
		case done:
			return nil
		}
		state[name] = visiting
		for _, d := range append(slices.Clone(table[name].deps), table[name].after...) {
			if !selected[d] {
				continue
			}
			if err := visit(d); err != nil {
				return err
			}
		}
		state[name] = done
		order = append(order, name)
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(selected)) {
		if err := visit(name); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// initModules builds the modules in order. It stops at the first failure and returns what it built
// so far, for the caller to close.
func initModules(ctx context.Context, table map[string]module, order []string) ([]built, error) {
	var out []built
	for _, name := range order {
		s, err := table[name].init(ctx)
		if err != nil {
			return out, fmt.Errorf("init %s: %w", name, err)
		}
		out = append(out, built{name, s})
	}
	return out, nil
}

// runModules runs the modules until ctx is done or one of them fails, calling ready once they all
// run. Then it stops them one at a time in reverse order, each drained before the next is told to
// stop, and returns the first failure.
func runModules(ctx context.Context, mods []built, ready func()) error {
	g, failed := errgroup.WithContext(ctx)
	stops := make([]func(), 0, len(mods))
	for _, m := range mods {
		if m.run == nil {
			continue
		}
		// Each module has its own context, canceled only when its turn to stop comes.
		runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stopped := make(chan struct{})
		g.Go(func() error {
			defer close(stopped)
			if err := m.run(runCtx); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			return nil
		})
		stops = append(stops, func() { cancel(); <-stopped })
	}
	ready()
	<-failed.Done()
	for _, stop := range slices.Backward(stops) {
		stop()
	}
	return g.Wait()
}

// closeModules releases what the modules hold, in reverse order.
func closeModules(mods []built) error {
	var errs []error
	for _, m := range slices.Backward(mods) {
		if m.close != nil {
			errs = append(errs, m.close())
		}
	}
	return errors.Join(errs...)
}
