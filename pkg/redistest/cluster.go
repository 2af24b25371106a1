package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var cluster struct {
	once sync.Once
	url  string
	err  error
	stop func()
}

// ClusterURL returns the redis+cluster:// URL of a real 3-master Redis Cluster made of
// redis-server processes, started on first use and stopped by Main. Without redis-server the test
// is skipped (a cluster cannot be embedded), except under CI=true, where Main has already failed.
func ClusterURL(tb testing.TB) string {
	tb.Helper()
	cluster.once.Do(func() { cluster.url, cluster.stop, cluster.err = startCluster() })
	if cluster.err != nil {
		if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv("CI") != "true" {
			tb.Skip("redis-server not installed: no Redis Cluster to test against")
		}
		tb.Fatalf("redistest: cluster: %v", cluster.err)
	}
	return cluster.url
}

// ClusterClient returns a cluster client, closed when the test ends.
func ClusterClient(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	opts, err := redis.ParseClusterURL(strings.Replace(ClusterURL(tb), "redis+cluster://", "redis://", 1))
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClusterClient(opts)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func stopCluster() {
	if cluster.stop != nil {
		cluster.stop()
	}
}

func startCluster() (string, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, err
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "redistest-cluster")
	if err != nil {
		return "", nil, err
	}
	var procs []*exec.Cmd
	stop := func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
		_ = os.RemoveAll(dir)
	}
	var addrs []string
	for i := range 3 {
		port, err := clusterPort()
		if err != nil {
			stop()
			return "", nil, err
		}
		p := strconv.Itoa(port)
		cmd := exec.Command(bin, "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+strconv.Itoa(i)+".conf",
			"--cluster-node-timeout", "5000")
		if err := cmd.Start(); err != nil {
			stop()
			return "", nil, err
		}
		procs = append(procs, cmd)
		addr := "127.0.0.1:" + p
		if err := WaitReady("redis://"+addr, 10*time.Second); err != nil {
			stop()
			return "", nil, err
		}
		addrs = append(addrs, addr)
	}
	create := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		stop()
		return "", nil, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		if err := waitClusterOK(addr, 20*time.Second); err != nil {
			stop()
			return "", nil, err
		}
	}
	return "redis+cluster://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2], stop, nil
}

// clusterPort finds a port whose cluster bus port (+10000) is free as well.
func clusterPort() (int, error) {
	for range 100 {
		port, err := FreePort()
		if err != nil {
			return 0, err
		}
		if port+10000 > 65535 {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		_ = l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port pair for a cluster node")
}

func waitClusterOK(addr string, timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := c.ClusterInfo(ctx).Result()
		cancel()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster node %s not ok: %v %s", addr, err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
