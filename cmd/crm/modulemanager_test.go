package main

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// recorder is a module table whose modules record what happens to them.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) record(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// module returns a module that records its init, the end of its run and its close; runErr, when
// set, is what its run returns at once.
func (r *recorder) module(name string, deps []string, runErr error) module {
	return module{deps: deps, init: func(context.Context) (service, error) {
		r.record("init " + name)
		return service{
			run: func(ctx context.Context) error {
				if runErr != nil {
					r.record("failed " + name)
					return runErr
				}
				<-ctx.Done()
				r.record("stopped " + name)
				return nil
			},
			close: func() error { r.record("closed " + name); return nil },
		}, nil
	}}
}

// chain is the table redis <- bus <- server, each depending on the one before.
func (r *recorder) chain(serverErr error) map[string]module {
	return map[string]module{
		"redis":  r.module("redis", nil, nil),
		"bus":    r.module("bus", []string{"redis"}, nil),
		"server": r.module("server", []string{"bus"}, serverErr),
	}
}

// runUntilReady runs the modules and stops them as soon as they all run.
func runUntilReady(t *testing.T, table map[string]module, targets ...string) error {
	t.Helper()
	order, err := resolve(table, targets)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := initModules(context.Background(), table, order)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := runModules(ctx, mods, cancel)
	return errors.Join(runErr, closeModules(mods))
}

func TestModulesStopInReverseOrder(t *testing.T) {
	var r recorder
	if err := runUntilReady(t, r.chain(nil), "server"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"init redis", "init bus", "init server",
		"stopped server", "stopped bus", "stopped redis",
		"closed server", "closed bus", "closed redis",
	}
	if diff := cmp.Diff(want, r.got()); diff != "" {
		t.Errorf("lifecycle (-want +got):\n%s", diff)
	}
}

func TestAFailingModuleStopsTheOthers(t *testing.T) {
	var r recorder
	boom := errors.New("boom")
	// ready cancels nothing here: the failure alone must bring the process down.
	table := r.chain(boom)
	order, err := resolve(table, []string{"server"})
	if err != nil {
		t.Fatal(err)
	}
	mods, err := initModules(context.Background(), table, order)
	if err != nil {
		t.Fatal(err)
	}
	err = runModules(context.Background(), mods, func() {})
	if !errors.Is(err, boom) || err.Error() != "server: boom" {
		t.Errorf("got %v, want server: boom", err)
	}
	got := r.got()[3:] // after the inits
	if diff := cmp.Diff([]string{"failed server", "stopped bus", "stopped redis"}, got); diff != "" {
		t.Errorf("stops after a failure (-want +got):\n%s", diff)
	}
}

func TestAFailedInitReturnsWhatWasBuilt(t *testing.T) {
	var r recorder
	table := r.chain(nil)
	table["server"] = module{deps: []string{"bus"}, init: func(context.Context) (service, error) {
		return service{}, errors.New("address in use")
	}}
	order, err := resolve(table, []string{"server"})
	if err != nil {
		t.Fatal(err)
	}
	mods, err := initModules(context.Background(), table, order)
	if err == nil || err.Error() != "init server: address in use" {
		t.Errorf("got %v, want init server: address in use", err)
	}
	if err := closeModules(mods); err != nil {
		t.Fatal(err)
	}
	want := []string{"init redis", "init bus", "closed bus", "closed redis"}
	if diff := cmp.Diff(want, r.got()); diff != "" {
		t.Errorf("a failed start (-want +got):\n%s", diff)
	}
}

func TestResolve(t *testing.T) {
	var r recorder
	table := map[string]module{
		"redis":   r.module("redis", nil, nil),
		"server":  r.module("server", []string{"redis"}, nil),
		"gateway": {deps: []string{"redis"}, after: []string{"server"}},
		"loop":    {deps: []string{"loop2"}},
		"loop2":   {deps: []string{"loop"}},
	}
	for _, tc := range []struct {
		targets []string
		want    []string
		wantErr string
	}{
		{targets: []string{"server"}, want: []string{"redis", "server"}},
		// after orders without selecting.
		{targets: []string{"gateway"}, want: []string{"redis", "gateway"}},
		{targets: []string{"gateway", "server"}, want: []string{"redis", "server", "gateway"}},
		{targets: []string{"server", "server"}, want: []string{"redis", "server"}},
		{targets: []string{"server", "ingester"}, wantErr: `unknown module "ingester"`},
		{targets: []string{"loop"}, wantErr: `module "loop" depends on itself`},
	} {
		got, err := resolve(table, tc.targets)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("resolve(%v): got %v, want error %q", tc.targets, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("resolve(%v): %v", tc.targets, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("resolve(%v) (-want +got):\n%s", tc.targets, diff)
		}
	}
}

// TestProcessModuleOrder checks the real table: what each target pulls in, and that the order puts
// the shutdown sequence right (gateway, gRPC server, bus, admin, Redis, in reverse).
func TestProcessModuleOrder(t *testing.T) {
	table := (&process{}).modules()
	for _, tc := range []struct {
		targets []string
		want    []string
	}{
		{[]string{gatewayTarget}, []string{"redis", "admin", "gateway"}},
		{[]string{"marketing"}, []string{"redis", "admin", "bus", "grpc-server", "marketing"}},
		{[]string{"sales", gatewayTarget}, []string{"redis", "admin", "bus", "grpc-server", "sales", "gateway"}},
		{append([]string{gatewayTarget}, serviceTargets...),
			[]string{"redis", "admin", "bus", "grpc-server", "marketing", "sales", "product", "support", "gateway"}},
	} {
		got, err := resolve(table, tc.targets)
		if err != nil {
			t.Errorf("resolve(%v): %v", tc.targets, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("resolve(%v) (-want +got):\n%s", tc.targets, diff)
		}
	}
	if _, err := resolve(table, []string{"all"}); err == nil {
		t.Error(`resolve(all): no error; "all" is expanded by the flag, never a module`)
	}
}
