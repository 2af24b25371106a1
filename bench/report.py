#!/usr/bin/env python3
"""Prints the table of bench/run.sh from the raw results in a work directory.

Usage: report.py WORKDIR. Reads the ghz JSON reports (health, capture, half, repeat, monitor-*),
the WRKJSON line of the REST run, the CPU samples (*.cpu), the Redis snapshots (mem.*,
cmdstats.*), the MONITOR logs and the "name value" lines of bench/bus (bus.out, bus.rc). Exits 1
when a run had more than 1% errors (or did not run), or the event bus lost or doubly applied an
event or failed, 0 otherwise: a missed target is reported, not failed.
"""

import json
import re
import sys
from collections import Counter
from pathlib import Path

MAX_ERROR_RATE = 0.01
SCRIPT_COMMANDS = ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro")

work = Path(sys.argv[1])
problems = []


def kv(path):
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


meta = kv(work / "meta.env")


class Run:
    """One load run: rate, latency percentiles (ms), errors and CPU per call."""

    def __init__(self, name, label, tool):
        self.name, self.label, self.tool = name, label, tool
        self.ok = self.errors = self.skipped = 0
        self.seconds = 0.0
        self.rps = self.p50 = self.p99 = None
        self.error_kinds = {}
        self.cpu = kv(work / f"{name}.cpu") if (work / f"{name}.cpu").exists() else {}

    @property
    def total(self):
        return self.ok + self.errors

    @property
    def error_rate(self):
        return self.errors / self.total if self.total else 1.0

    @property
    def failed(self):
        """No calls, or more than MAX_ERROR_RATE of them failed: its figures measure errors, so the
        report shows an error in their place."""
        return self.error_rate > MAX_ERROR_RATE

    def cpu_per_call_us(self, who):
        if who not in self.cpu or not self.ok:
            return None
        return float(self.cpu[who]) * 1e6 / (self.total + self.skipped)

    def box_busy(self):
        """Share of all the machine's cores busy with crm + redis + the load generator."""
        if not self.cpu:
            return None
        used = sum(float(self.cpu[w]) for w in ("crm", "redis", "client"))
        return used / (float(self.cpu["wall"]) * int(meta.get("cpus", "1")))

    def other_busy(self):
        """Share of all cores busy with anything else on the machine during the run."""
        if "machine" not in self.cpu:
            return None
        used = sum(float(self.cpu[w]) for w in ("crm", "redis", "client"))
        other = max(0.0, float(self.cpu["machine"]) - used)
        return other / (float(self.cpu["wall"]) * int(meta.get("cpus", "1")))


def ghz_run(name, label, skipped=0):
    """A ghz JSON report; skipped calls (--skipFirst) count in the rate, not in the latencies."""
    r = Run(name, label, "ghz")
    r.skipped = skipped
    path = work / f"{name}.out"
    if not path.exists() or not path.stat().st_size:
        problems.append(f"{label}: no result")
        return r
    rep = json.loads(path.read_text())
    codes = rep.get("statusCodeDistribution") or {}
    r.ok = codes.get("OK", 0)
    r.errors = sum(n for code, n in codes.items() if code != "OK")
    r.error_kinds = rep.get("errorDistribution") or {}
    r.seconds = rep["total"] / 1e9
    r.rps = (r.ok + skipped) / r.seconds if r.seconds else 0.0  # successful calls per second
    lat = {int(round(d["percentage"])): d["latency"] / 1e6 for d in rep.get("latencyDistribution") or []}
    r.p50, r.p99 = lat.get(50), lat.get(99)
    return r


def rest_run(name, label):
    r = Run(name, label, meta.get("rest_tool", "wrk"))
    path = work / f"{name}.out"
    line = next((l for l in path.read_text().splitlines() if l.startswith("WRKJSON ")), None) if path.exists() else None
    if line is None:
        problems.append(f"{label}: no result")
        return r
    rep = json.loads(line[len("WRKJSON "):])
    # wrk counts a non-2xx/3xx answer both as a request and as errors.status.
    r.errors = sum(rep[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout", "errors_status"))
    r.ok = rep["requests"] - rep["errors_status"]
    r.error_kinds = {k: rep[k] for k in rep if k.startswith("errors_") and rep[k]}
    r.rps = r.ok / (rep["duration_us"] / 1e6)
    r.p50, r.p99 = rep["p50_us"] / 1e3, rep["p99_us"] / 1e3
    return r


conc = meta.get("concurrency", "50")
runs = [
    ghz_run("health", "(a) gRPC Health/Check"),
    ghz_run("capture", "(b) gRPC CaptureLead, new lead"),
    rest_run("rest", "(c) REST POST /v1/leads, new lead"),
    ghz_run("half", f"(d) gRPC CaptureLead @{meta.get('half_rps', '?')}/s",
            skipped=int(meta.get("half_skip", "0"))),
]
if (work / "repeat.out").exists():
    runs.append(ghz_run("repeat", "(e) gRPC CaptureLead, known lead"))
cases = []  # (g): the services' own cases, bench/cases/*.sh
if (work / "cases.tsv").exists():
    for case in (work / "cases.tsv").read_text().splitlines():
        name, label = case.split("\t", 1)
        cases.append(ghz_run(name, label))
runs += cases
half_cases = []  # (g): the services' fixed-rate runs at half saturation, judged by p99
if (work / "halfcases.tsv").exists():
    for case in (work / "halfcases.tsv").read_text().splitlines():
        name, label = case.split("\t", 1)
        half_cases.append(ghz_run(name, label))
runs += half_cases
rest_cases = []  # (g): the same calls through the gateway, named after their gRPC case plus -rest
if (work / "restcases.tsv").exists():
    for case in (work / "restcases.tsv").read_text().splitlines():
        name, label = case.split("\t", 1)
        rest_cases.append(rest_run(name, label))
runs += rest_cases
# (h): (b) with 10 % of traces sampled and exported, twice, between two untraced runs
traced = [ghz_run(n, "(h) gRPC CaptureLead, 10 % traced") for n in ("traced", "traced2") if (work / f"{n}.out").exists()]
untraced = [ghz_run(n, "(h) gRPC CaptureLead, untraced") for n in ("untraced", "untraced2") if (work / f"{n}.out").exists()]
runs += traced + untraced
by = {r.name: r for r in runs}


def fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


lines = []
out = lines.append
out(f"CRM Cycle bench (DESIGN.md §10): {meta.get('date')}  revision {meta.get('revision')}")
out(f"machine: {meta.get('cpus')} CPUs, {meta.get('cpu_model')}; Redis {meta.get('redis_version')}; "
    "client, crm and redis-server on the same box")
rest_how = "2 threads, " if meta.get("rest_tool") == "wrk" else ""
out(f"load: concurrency {conc}, {meta.get('duration')} per run; gRPC by ghz, REST by "
    f"{meta.get('rest_tool')} {meta.get('rest_tool_version')} ({rest_how}{conc} connections)")
out("")
hdr = (f"{'run':<36} {'tool':<8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7}"
       f" {'crm':>6} {'redis':>6} {'client':>6} {'busy':>5} {'other':>5}")
out(hdr)
out(f"{'':<36} {'':<8} {'':>8} {'':>7} {'':>7} {'':>7}  {'CPU µs per call':^20}")
out("-" * len(hdr))
for r in runs:
    busy = r.box_busy()
    if r.failed:  # the rate, latencies and CPU per call of failed calls are no figures of the call
        out(f"{r.label:<36} {r.tool:<8} {'ERROR':>8} {'-':>7} {'-':>7} {r.error_rate * 100:6.2f}%"
            f" {'-':>6} {'-':>6} {'-':>6} {fmt(busy and busy * 100, '4.0f'):>4}%"
            f" {fmt(r.other_busy() and r.other_busy() * 100, '4.0f'):>4}%")
    else:
        out(f"{r.label:<36} {r.tool:<8} {fmt(r.rps, '8.0f'):>8} {fmt(r.p50, '7.2f'):>7} {fmt(r.p99, '7.2f'):>7}"
            f" {r.error_rate * 100:6.2f}%"
            f" {fmt(r.cpu_per_call_us('crm'), '6.0f'):>6} {fmt(r.cpu_per_call_us('redis'), '6.0f'):>6}"
            f" {fmt(r.cpu_per_call_us('client'), '6.0f'):>6} {fmt(busy and busy * 100, '4.0f'):>4}%"
            f" {fmt(r.other_busy() and r.other_busy() * 100, '4.0f'):>4}%")
    if r.errors:
        out(f"{'':<36} errors: {r.error_kinds}")
    if r.total and r.failed:
        problems.append(f"{r.label}: error rate {r.error_rate:.2%} > {MAX_ERROR_RATE:.0%}: {r.error_kinds}")
out("")
out("CPU µs per call: CPU time of crm, redis-server and the load generator over the run / calls.")
out("busy: CPU of those three, other: CPU of everything else on the machine, as shares of all cores.")


def server_us(r):
    a, b = r.cpu_per_call_us("crm"), r.cpu_per_call_us("redis")
    return None if a is None or b is None else a + b


sh, sc, sr = (server_us(by[n]) for n in ("health", "capture", "rest"))
if sh and sc and sr:
    out(f"server CPU per call (crm + redis): health {sh:.0f} µs, CaptureLead {sc:.0f} µs, REST {sr:.0f} µs;"
        f" their inverse ratios, free of the load generator's share: CaptureLead/health {sh / sc:.2f},"
        f" REST/gRPC {sc / sr:.2f}")
go_rows = []
for r in runs:
    calls = r.total + r.skipped
    if calls and "go_alloc_bytes" in r.cpu and not r.failed:
        wall = float(r.cpu["wall"])
        go_rows.append(f"{r.label[:3]} {float(r.cpu['go_mallocs']) / calls:.0f} objects,"
                       f" {float(r.cpu['go_alloc_bytes']) / calls / 1024:.1f} KiB,"
                       f" {float(r.cpu['go_gc_cycles']) / wall:.0f} GC/s")
if go_rows:
    out("crm allocations per call: " + "; ".join(go_rows))
noisy = [r.label[:3] for r in runs if (r.other_busy() or 0) > 0.10]
if noisy:
    out(f"WARNING: other work took more than 10% of the machine during {' '.join(noisy)}: "
        "those figures are low and noisy; run again on a quiet machine.")
out("")

# ---------------------------------------------------------------------------------- Redis
mem0, mem1 = kv(work / "mem.before"), kv(work / "mem.after")
leads = int(mem1["leads"]) - int(mem0["leads"])
# DESIGN §10 counts a lead as its record, its identity entry (the e-mail index) and its list
# indexes; the search indexes and the outbox (per event) have targets of their own. The record is
# the mean MEMORY USAGE of sampled lead keys; the shared keys' parts are their growth over (b).
mem_total = mem_stream = mem_index = mem_search = mem_identity = mem_record = mem_lead = mem_event = None
events_per_lead = None
if leads > 0:
    d = lambda k: int(mem1.get(k, 0)) - int(mem0.get(k, 0))  # noqa: E731
    mem_total = d("used_memory") / leads
    mem_stream = d("stream") / leads
    mem_index, mem_search, mem_identity = d("index") / leads, d("search") / leads, d("identity") / leads
    sizes = [int(x) for x in (work / "mem.records").read_text().split()] if (work / "mem.records").exists() else []
    mem_record = sum(sizes) / len(sizes) if sizes else None
    if mem_record is not None:
        mem_lead = mem_record + mem_identity + mem_index
    if d("events") > 0:
        mem_event = d("stream") / d("events")
        events_per_lead = d("events") / leads


def cmdstats(path):
    calls = {}
    for line in path.read_text().splitlines():
        m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line)
        if m:
            calls[m.group(1)] = int(m.group(2))
    return calls


cs0, cs1 = cmdstats(work / "cmdstats.before"), cmdstats(work / "cmdstats.after")
cs_diff = {c: cs1.get(c, 0) - cs0.get(c, 0) for c in set(cs0) | set(cs1) if cs1.get(c, 0) != cs0.get(c, 0)}
scripts_per_lead = sum(cs_diff.get(c, 0) for c in SCRIPT_COMMANDS) / leads if leads > 0 else None
all_per_lead = sum(cs_diff.values()) / leads if leads > 0 else None

# MONITOR: '<ts> [<db> <client>] "cmd" ...'; <client> is "lua" for commands a script runs.
MON = re.compile(r'^\d+\.\d+ \[\d+ (\S+)\] "([^"]+)"')


def monitor(name):
    """Top-level commands per call of a MONITOR run: those of crm's request path (its connections
    named "crm"), those of the rest (the event bus' "crm-bus" consumers reacting to the calls'
    events, other clients), and those scripts run inside Redis."""
    path = work / f"{name}.monitor"
    if not path.exists():
        return None
    rep = json.loads((work / f"{name}.out").read_text())
    calls = (rep.get("statusCodeDistribution") or {}).get("OK", 0)
    names = {}  # client address -> connection name
    clients = work / f"{name}.clients"
    if clients.exists():
        for line in clients.read_text().splitlines():
            f = dict(pair.split("=", 1) for pair in line.split() if "=" in pair)
            names[f.get("addr", "")] = f.get("name", "")
    request_path = "crm" in names.values()
    top, rest, inner = Counter(), Counter(), Counter()
    for line in path.read_text().splitlines():
        m = MON.match(line)
        if not m:
            continue
        client, cmd = m.group(1), m.group(2).lower()
        if cmd in ("ping", "info"):  # the health checker's pings, not calls
            continue
        if client == "lua":
            inner[cmd] += 1
        elif not request_path or names.get(client) == "crm":
            top[cmd] += 1
        else:
            rest[(names.get(client) or "other") + " " + cmd] += 1
    return calls, top, rest, inner


def per_call(counter, calls):
    return ", ".join(f"{c} {n / calls:.2f}" for c, n in counter.most_common()) or "none"


out("Redis")
if mem_total is not None:
    out(f"  memory per new lead over (b): {mem_total:.0f} B in all  ({leads} leads; used_memory "
        f"{int(mem0['used_memory'])} -> {int(mem1['used_memory'])})")
    out(f"    the lead (DESIGN §10): {fmt(mem_lead, '.0f')} B = record {fmt(mem_record, '.0f')} B (mean MEMORY USAGE"
        f" of sampled lead keys) + identity entry {mem_identity:.0f} B + list indexes {mem_index:.0f} B;"
        f" search indexes {mem_search:.0f} B")
    if mem_event is not None:
        out(f"    the outbox: {mem_stream:.0f} B per lead, {events_per_lead:.2f} events of {mem_event:.0f} B each")
    if mem_lead is not None:
        out(f"    the rest (the customer's lifecycle and other records, markers, other indexes): "
            f"{mem_total - mem_lead - mem_search - mem_stream:.0f} B")
    out(f"  commands per new lead over (b): {scripts_per_lead:.2f} script calls (EVALSHA/EVAL/FCALL), "
        f"{all_per_lead:.2f} commands counted in INFO commandstats (script-run ones included)")
rt, request_rt = {}, {}
for name, what in (("monitor-new", "new lead"), ("monitor-repeat", "known lead")):
    res = monitor(name)
    if res is None:
        continue
    calls, top, rest, inner = res
    if not calls:
        problems.append(f"MONITOR sample {name}: no successful call")
        continue
    rt[name] = sum(top.values()) / calls
    trips = work / f"{name}.trips"
    if trips.exists():
        request_rt[name] = int(trips.read_text().strip() or 0) / calls
        out(f"  round trips per CaptureLead on the request path, {what} (crm_redis_request_round_trips_total over "
            f"{calls} sequential calls): {request_rt[name]:.2f}")
    out(f"  top-level commands per CaptureLead on crm's connections, {what} ({calls} sequential calls under MONITOR; "
        f"the reactions' commands on the same pool included): {rt[name]:.2f}  [{per_call(top, calls)}]")
    if rest:
        out(f"    other clients meanwhile (the event bus reacting, background work): [{per_call(rest, calls)}]")
    out(f"    run inside the script per call: [{per_call(inner, calls)}]")
# bench/cases/value.sh: the two reads' commands per call at each size (flat means the same).
for size in ("small", "large"):
    for name, what in (("monitor-value", "GetCustomerValue"), ("monitor-funnel", "GetLifecycleFunnel of a month")):
        res = monitor(f"{name}-{size}")
        if res is None:
            continue
        calls, top, rest, inner = res
        if not calls:
            problems.append(f"MONITOR sample {name}-{size}: no successful call")
            continue
        out(f"  top-level commands per {what} on the request path, {size} tenant ({calls} sequential calls): "
            f"{sum(top.values()) / calls:.2f}  [{per_call(top, calls)}]")
out("")

# ---------------------------------------------------------------------------------- latency
def histogram(name):
    """ghz's latency histogram of a run: (upper bound ms, count) rows."""
    path = work / f"{name}.out"
    if not path.exists() or not path.stat().st_size:
        return []
    return [(b["mark"] * 1e3, b["count"]) for b in json.loads(path.read_text()).get("histogram") or []]


rows = histogram("half")
if rows:
    top = max(n for _, n in rows) or 1
    out(f"Latency histogram of (d), CaptureLead at half saturation ({meta.get('half_rps')}/s; ghz buckets, ms):")
    for mark, n in rows:
        out(f"  <= {mark:8.2f} {n:7d} {'#' * round(40 * n / top)}")
    out("")

# ---------------------------------------------------------------------------------- lists
lists = []  # (leads, p50 ms, p99 ms, req/s) of ListLeads' first page, (i)
for n in (10_000, 100_000, 1_000_000):
    if (work / f"lists-{n}.out").exists():
        r = ghz_run(f"lists-{n}", f"(i) ListLeads, {n} leads")
        if r.total and r.error_rate > MAX_ERROR_RATE:
            problems.append(f"{r.label}: error rate {r.error_rate:.2%}: {r.error_kinds}")
        lists.append((n, r.p50, r.p99, r.rps))
lists_growth = lists[-1][2] / lists[0][2] if len(lists) > 1 and lists[0][2] else None
if lists:
    out(f"Lists (i): ListLeads, first page of 50, newest first, ghz -c 10 for {meta.get('lists_duration')} at each size")
    for n, p50, p99, rps in lists:
        out(f"  {n:>9,} leads: p50 {fmt(p50, '.2f')} ms, p99 {fmt(p99, '.2f')} ms, {fmt(rps, '.0f')} req/s")
    out("")

# ---------------------------------------------------------------------------------- lookup, search, export
finds = {}  # kind -> [(leads, p50 ms, p99 ms, req/s)], (j)
for kind, label in (("lookup", "e-mail lookup"), ("search", "name search, first page of 50")):
    for n in (10_000, 100_000, 1_000_000):
        if (work / f"{kind}-{n}.out").exists():
            r = ghz_run(f"{kind}-{n}", f"(j) {label}, {n} leads")
            if r.total and r.error_rate > MAX_ERROR_RATE:
                problems.append(f"{r.label}: error rate {r.error_rate:.2%}: {r.error_kinds}")
            finds.setdefault(kind, []).append((n, r.p50, r.p99, r.rps))
exports = []  # (leads, rows/s), (k)
for n in (10_000, 100_000, 1_000_000):
    path = work / f"export-{n}.out"
    if path.exists():
        rows, ns = (int(x) for x in path.read_text().split())
        if rows != n:
            problems.append(f"(k) export of {n} leads gave {rows} rows")
        exports.append((n, rows / (ns / 1e9) if ns else None))
for kind, runs in finds.items():
    what = "email = <a lead's e-mail>" if kind == "lookup" else 'displayName:"ada lo*"'
    out(f"Lookup and search (j): ListLeads with {what}, ghz -c 10 at each size")
    for n, p50, p99, rps in runs:
        out(f"  {n:>9,} leads: p50 {fmt(p50, '.2f')} ms, p99 {fmt(p99, '.2f')} ms, {fmt(rps, '.0f')} req/s")
if exports:
    out("Export (k): GET /v1/leads:export (NDJSON through the gateway), the whole tenant")
    for n, rate in exports:
        out(f"  {n:>9,} leads: {fmt(rate, '.0f')} rows/s")
if finds or exports:
    out("")

# ---------------------------------------------------------------------------------- event bus
def bus_results():
    """bench/bus output: {name: value} (strings), the bus_error lines, busbench's exit status."""
    path = work / "bus.out"
    values, errors = {}, []
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "bus_error":
                errors.append(value)
            elif name:
                values[name] = value
    rc_path = work / "bus.rc"
    rc = rc_path.read_text().strip() if rc_path.exists() else None
    return values, errors, rc


bus = None
bus_enabled = meta.get("bus", "1") != "0"
bus_rate = meta.get("bus_rate", "1000")
if bus_enabled:
    bus, bus_errors, bus_rc = bus_results()
    err_path = work / "bus.err"
    err_tail = " | ".join(err_path.read_text().strip().splitlines()[-3:]) if err_path.exists() else ""
    for e in bus_errors:
        problems.append(f"(f) event bus: {e}")
    if bus_rc not in (None, "0") and not bus_errors:
        problems.append(f"(f) event bus: busbench exited with status {bus_rc}: {err_tail}")
    if "bus_lag_p99_ms" not in bus:
        if not bus_errors and bus_rc in (None, "0"):
            problems.append("(f) event bus: no result" + (f": {err_tail}" if err_tail else ""))
        bus = bus or None


def bf(name):
    v = bus.get(name) if bus else None
    try:
        return None if v is None else float(v)
    except ValueError:
        return None


if bus:
    bus_rate = bus.get("bus_lag_rate", bus_rate)
    n = bus.get("bus_throughput_events")
    out(f"Event bus (bench/bus, its own redis-server): one consumer (events.NewConsumer, ConsumerConfig "
        f"defaults), {bus.get('bus_partitions')} partitions, {bus.get('bus_tenants')} tenants, "
        f"{bus.get('bus_publishers')} publishing goroutines")
    bhdr = (f"{'run':<40} {'events/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}"
            f" {'client':>6} {'redis':>6} {'busy':>5} {'other':>5}")
    out(bhdr)
    out(f"{'':<40} {'':>8} {'':>7} {'':>7} {'':>7} {'':>7}  {'CPU µs/event':^12}")
    out("-" * len(bhdr))
    rows = []  # (key prefix in bus.out, label, short name)
    if n:
        rows += [("bus_publish", f"(f) publish {n} events, backlog", "publish"),
                 ("bus_throughput_effect", "(f) drain it, exactly-once effect", "drain effect"),
                 ("bus_throughput_noop", "(f) drain it, no-op handler", "drain no-op")]
    rows.append(("bus_lag", f"(f) {bus_rate}/s: lag commit -> effect", "lag"))
    if "bus_lag_tuned_p99_ms" in bus:
        rows.append(("bus_lag_tuned", f"(f) {bus_rate}/s, Block {bus.get('bus_tuned_block_ms')} ms: lag", "tuned lag"))
    noisy_bus = []
    for key, label, short in rows:
        if bf(key + "_eps") is None:
            continue
        eps = bf(key + "_published_eps") if key.startswith("bus_lag") else bf(key + "_eps")
        other = bf(key + "_other_pct")
        if other is not None and other > 10:
            noisy_bus.append(short)
        out(f"{label:<40} {fmt(eps, '8.0f'):>8} {fmt(bf(key + '_p50_ms'), '7.2f'):>7}"
            f" {fmt(bf(key + '_p95_ms'), '7.2f'):>7} {fmt(bf(key + '_p99_ms'), '7.2f'):>7}"
            f" {fmt(bf(key + '_max_ms'), '7.2f'):>7} {fmt(bf(key + '_client_cpu_us'), '6.0f'):>6}"
            f" {fmt(bf(key + '_redis_cpu_us'), '6.0f'):>6} {fmt(bf(key + '_busy_pct'), '4.0f'):>4}%"
            f" {fmt(other, '4.0f'):>4}%")
    out("")
    out("events/s: publish and drain, events over the time they took (drain: from the consumer's start to the")
    out("last handler call); lag runs: the rate reached by the publishers. Lag: handler's effect committed minus")
    out("the envelope's occurred_time, stamped right before the outbox commit. client: busbench's own CPU")
    out("(publishers and consumer in one process), redis: INFO cpu of its redis-server.")
    if "bus_lag_delivery_p99_ms" in bus:
        out(f"lag to the handler call (delivery, before the effect's write): p50 {bus['bus_lag_delivery_p50_ms']} ms,"
            f" p99 {bus['bus_lag_delivery_p99_ms']} ms" +
            (f"; tuned: p50 {bus['bus_lag_tuned_delivery_p50_ms']} ms, p99 {bus['bus_lag_tuned_delivery_p99_ms']} ms"
             if "bus_lag_tuned_delivery_p99_ms" in bus else ""))
    e, z = bf("bus_throughput_effect_eps"), bf("bus_throughput_noop_eps")
    if e and z:
        out(f"drain with the exactly-once effect / with a no-op handler: {e / z:.2f}")
    applied = [f"{label} {bus[k + '_applied']}" for k, label in
               (("bus_throughput_effect", "drain"), ("bus_lag", "lag"), ("bus_lag_tuned", "tuned lag"))
               if k + "_applied" in bus]
    redeliv = sum(int(bf(k) or 0) for k in bus if k.endswith("_redeliveries"))
    if applied:
        out(f"exactly once: effects applied ({', '.join(applied)}) equal the events published, tenant by tenant"
            if not bus_errors else f"effects applied: {', '.join(applied)} (see ERRORS)")
        out(f"  redeliveries (marker already set): {redeliv}; no event pending or dead-lettered at the end"
            if not bus_errors else f"  redeliveries (marker already set): {redeliv}")
    calls = [f"{short} {bus[key + '_redis_calls_per_event']} [{bus.get(key + '_redis_calls', '')}]"
             for key, _, short in rows if key != "bus_publish" and key + "_redis_calls_per_event" in bus]
    if calls:
        out("Redis commands per event (INFO commandstats, those run inside scripts included; publishing: 1 EVALSHA,")
        out("run inside: XADD; a lag run counts its publish too):")
        for c in calls:
            out(f"  {c}")
    if noisy_bus:
        out(f"WARNING: other work took more than 10% of the machine during the bus runs ({', '.join(noisy_bus)}): "
            "the figures are noisy.")
    out("")

# ---------------------------------------------------------------------------------- targets
# Every target of DESIGN.md §10, with its value and PASS/MISS; "not measured" when this run has no
# case for it (a bench case the issue that builds the feature adds).
h, c, rest, half = by["health"], by["capture"], by["rest"], by["half"]
targets = []


def run_errors(runs):
    """ "ERROR: ..." naming the failed runs among runs (their figures are not shown), or None."""
    failed = [r for r in runs if r is not None and r.failed]
    if not failed:
        return None
    return "ERROR: " + ", ".join(f"{r.name} {r.error_rate:.0%} failed" if r.total else f"{r.name} no calls"
                                 for r in failed)


def target(name, value, shown, goal, ok, runs=()):
    """A target's line; runs are those its value comes from."""
    error = run_errors(runs)
    if error:
        targets.append((name, "-", goal, error))
        return
    targets.append((name, shown if value is not None else "-", goal,
                    "-" if value is None else ("PASS" if ok(value) else "MISS")))


def tracked(name, shown, runs=()):
    """A figure shown, not judged; runs as in target."""
    error = run_errors(runs)
    targets.append((name, "-" if error else shown, "tracked", error or "-"))


def kv_lines(path):
    """"name value" lines of a case's results file; {} when it is missing."""
    if not path.exists():
        return {}
    return dict(line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)


def not_measured(name, goal, why):
    targets.append((name, "-", goal, f"not measured: {why}"))


ratio = lambda a, b: a / b if a is not None and b else None  # noqa: E731


def alloc_kib(r):
    calls = r.total + r.skipped
    return float(r.cpu["go_alloc_bytes"]) / calls / 1024 if calls and "go_alloc_bytes" in r.cpu else None


# A single-resource write: server CPU per call at most 3x the no-op call's, req/s at least 0.35x.
target("CaptureLead server CPU / health's (crm + redis)", ratio(sc, sh), fmt(ratio(sc, sh), ".2f") + "x",
       "<= 3x", lambda v: v <= 3, runs=(c, h))
target("CaptureLead req/s / health's", ratio(c.rps, h.rps), fmt(ratio(c.rps, h.rps), ".2f"),
       ">= 0.35", lambda v: v >= 0.35, runs=(c, h))
redis_us = c.cpu_per_call_us("redis")
target("Redis CPU per CaptureLead (consumers' work included)", redis_us, f"{fmt(redis_us, '.0f')} µs",
       "<= 60 µs", lambda v: v <= 60, runs=(c,))
# "Exactly one Redis round trip on the request path": what the calls send while they are served, as
# crm counts it; the MONITOR count of crm's connections also holds the reactions that share them.
target("Redis round trips on the request path per new-lead CaptureLead", request_rt.get("monitor-new"),
       fmt(request_rt.get("monitor-new"), ".2f"), "== 1", lambda v: abs(v - 1) < 0.05)
target("Redis round trips on the request path per known-lead CaptureLead", request_rt.get("monitor-repeat"),
       fmt(request_rt.get("monitor-repeat"), ".2f"), "== 1", lambda v: abs(v - 1) < 0.05)
for name, what in (("monitor-new", "new-lead"), ("monitor-repeat", "known-lead")):
    tracked(f"top-level commands per {what} CaptureLead on crm's connections (MONITOR, reactions included)",
            fmt(rt.get(name), ".2f"))
target("crm allocations per CaptureLead", alloc_kib(c), f"{fmt(alloc_kib(c), '.1f')} KiB",
       "<= 16 KiB", lambda v: v <= 16, runs=(c,))
target("REST / gRPC CaptureLead (req/s)", ratio(rest.rps, c.rps), fmt(ratio(rest.rps, c.rps), ".2f"),
       ">= 0.8", lambda v: v >= 0.8, runs=(rest, c))
target(f"CaptureLead p99 at half saturation ({meta.get('half_rps')}/s)", half.p99,
       f"{fmt(half.p99, '.2f')} ms", "< 10 ms", lambda v: v < 10, runs=(half,))
for r in half_cases:  # calls that cross services
    target(f"{r.label[4:]} p99", r.p99, f"{fmt(r.p99, '.2f')} ms", "< 20 ms", lambda v: v < 20, runs=(r,))
# Every write case by both ratios, against the yardstick of a single-resource write; reads and
# calls that cross services are shown by the same ratios, tracked rather than judged.
TRACKED = ("get-", "convert-", "add-line-", "create-ticket")
for r in cases:
    cpu = ratio(server_us(r), sh)
    is_tracked = r.name.removeprefix("case-").startswith(TRACKED)
    for what, v, goal, ok in (("server CPU / health's", cpu, "<= 3x", lambda v: v <= 3),
                              ("req/s / health's", ratio(r.rps, h.rps), ">= 0.35", lambda v: v >= 0.35)):
        shown = fmt(v, ".2f") + ("x" if "CPU" in what else "")
        if is_tracked:
            tracked(f"{r.label[4:]}: {what}", shown, runs=(r, h))
        else:
            target(f"{r.label[4:]}: {what}", v, shown, goal, ok, runs=(r, h))
for r in cases:  # bench/cases/value.sh: a read at the large tenant against the same read at the small one
    if r.name.endswith("-large"):
        small = by.get(r.name.removesuffix("-large") + "-small")
        target(f"{r.label[4:]} / at the small tenant (req/s)", ratio(r.rps, small.rps if small else None),
               fmt(ratio(r.rps, small.rps if small else None), ".2f"), ">= 0.8", lambda v: v >= 0.8, runs=(r, small))
for r in rest_cases:
    grpc = next((g for g in cases if g.name == r.name.removesuffix("-rest")), None)
    target(f"{r.label[4:]} / its gRPC case (req/s)", ratio(r.rps, grpc.rps if grpc else None),
           fmt(ratio(r.rps, grpc.rps if grpc else None), ".2f"), ">= 0.8", lambda v: v >= 0.8, runs=(r, grpc))
target("Redis memory per lead: record, identity entry, list indexes", mem_lead,
       f"{fmt(mem_lead, '.0f')} B", "<= 600 B", lambda v: v <= 600)
if mem_search is not None:
    target("Redis memory per lead: name and company search indexes", mem_search,
           f"{fmt(mem_search, '.0f')} B", "<= 150 B", lambda v: v <= 150)
target("Redis memory per event in the outbox", mem_event, f"{fmt(mem_event, '.0f')} B", "<= 250 B",
       lambda v: v <= 250)
if lists:
    target(f"list page p99, {lists[-1][0]:,} / {lists[0][0]:,} leads", lists_growth,
           fmt(lists_growth, ".2f") + "x", "flat (<= 1.5x)", lambda v: v <= 1.5)
else:
    not_measured("list latency flat from 10k to 1M leads", "flat", "BENCH_LISTS=0")
for kind, runs in finds.items():
    if len(runs) > 1 and runs[0][2]:
        growth = runs[-1][2] / runs[0][2]
        target(f"{kind} p99, {runs[-1][0]:,} / {runs[0][0]:,} leads", growth, fmt(growth, ".2f") + "x",
               "flat (<= 1.5x)", lambda v: v <= 1.5)
if bus_enabled:
    target(f"event lag p99 at {bus_rate} events/s", bf("bus_lag_p99_ms"),
           f"{fmt(bf('bus_lag_p99_ms'), '.2f')} ms", "< 10 ms", lambda v: v < 10)
    if float(bus_rate) < 5000:
        targets.append(("(the target's rate is 5,000 events/s: BENCH_BUS_RATE)", "", "", ""))
if traced and untraced:
    traced_rps, untraced_rps = sum(r.rps or 0 for r in traced), sum(r.rps or 0 for r in untraced)
    cost = 1 - traced_rps / untraced_rps if traced_rps and untraced_rps else None
    target("CaptureLead throughput lost to 10 % trace sampling", cost,
           f"{fmt(cost and cost * 100, '.1f')} %", "<= 15 %", lambda v: v <= 0.15, runs=(*traced, *untraced))
    if traced_rps and untraced_rps and c.rps:
        tracked("(h) traced / (b), a fresh Redis at the run's start; untraced / (b)",
                f"{fmt(traced_rps / len(traced) / c.rps, '.2f')}x; {fmt(untraced_rps / len(untraced) / c.rps, '.2f')}x",
                runs=(*traced, *untraced, c))
else:
    not_measured("throughput lost to 10 % trace sampling", "<= 15 %", "BENCH_TRACED=0")
import_case = next((r for r in cases if r.name == "case-import"), None)
if (work / "import.results").exists():
    out("(g) " + (work / "import.results").read_text().strip())
if import_case is None:
    not_measured("import leads/s (and / CaptureLead's)", ">= 20,000 (5x)", "no bench case (import, issue 15)")
else:
    target("import leads/s", import_case.rps, fmt(import_case.rps, ".0f"), ">= 20,000", lambda v: v >= 20000,
           runs=(import_case,))
    target("import / CaptureLead (leads/s)", ratio(import_case.rps, c.rps),
           fmt(ratio(import_case.rps, c.rps), ".1f") + "x", ">= 5x", lambda v: v >= 5, runs=(import_case, c))
hooks = kv_lines(work / "webhooks.results")
if "webhook_p99_ms" in hooks:
    hf = lambda k: float(hooks[k]) if k in hooks else None  # noqa: E731
    rate, reached = hf("webhook_rate"), hf("webhook_rate_reached")
    expected, delivered = hf("webhook_expected"), hf("webhook_delivered")
    out(f"(g) webhooks at {fmt(rate, '.0f')}/s (ghz reached {fmt(reached, '.0f')}/s): p50 {hf('webhook_p50_ms'):.1f} ms, "
        f"p99 {hf('webhook_p99_ms'):.1f} ms, max {fmt(hf('webhook_max_ms'), '.1f')} ms; "
        f"delivered {fmt(delivered, '.0f')} of {fmt(expected, '.0f')} captures")
    stages = [(st, hf(f"webhook_stage_{st}_mean_ms"), hf(f"webhook_stage_{st}_p99_ms"))
              for st in ("read", "batch", "record", "queue", "send") if f"webhook_stage_{st}_mean_ms" in hooks]
    if stages:
        out("    stages, mean / p99 ms: " + ", ".join(f"{st} {m:.1f} / {p:.1f}" for st, m, p in stages))
    # Deliveries that never arrived within the wait count as beyond any p99.
    lost = expected is not None and delivered is not None and delivered < expected
    p99 = float("inf") if lost else hf("webhook_p99_ms")
    target(f"webhook delivery p99 at {fmt(rate, '.0f')} events/s", p99,
           f"{hf('webhook_p99_ms'):.1f} ms" + (" (some lost)" if lost else ""), "< 250 ms", lambda v: v < 250)
    if rate and reached is not None and reached < 0.95 * rate:
        targets.append((f"(ghz reached only {reached:.0f} of the {rate:.0f} captures/s asked for)", "", "", ""))
else:
    not_measured("webhook delivery p99 at 500 events/s", "< 250 ms", "no webhooks case in this run")
cost = kv_lines(work / "integration.results")  # bench/cases/integration.sh
if "integration_with_crm_us" in cost and "integration_without_crm_us" in cost:
    def cost_of(who):
        try:
            w, wo = float(cost[f"integration_with_{who}_us"]), float(cost[f"integration_without_{who}_us"])
        except ValueError:  # a run without calls
            return None, None, None
        return w, wo, w - wo
    crm_w, crm_wo, crm_d = cost_of("crm")
    redis_w, redis_wo, redis_d = cost_of("redis")
    cost_runs = [ghz_run(f"integration-{w}", f"(g) CaptureLead {w} the integration service") for w in ("with", "without")]
    for r in cost_runs:
        if r.total and r.failed:
            problems.append(f"{r.label}: error rate {r.error_rate:.2%} > {MAX_ERROR_RATE:.0%}: {r.error_kinds}")
    out("(g) CaptureLead with / without the integration service: " + (run_errors(cost_runs) or
        f"{float(cost['integration_with_rps']):.0f} / "
        f"{float(cost['integration_without_rps']):.0f} calls/s; crm CPU {fmt(crm_w, '.0f')} / {fmt(crm_wo, '.0f')} µs, "
        f"Redis CPU {fmt(redis_w, '.0f')} / {fmt(redis_wo, '.0f')} µs per call"))
    for who, d in (("crm", crm_d), ("Redis", redis_d)):
        tracked(f"{who} CPU the integration consumer adds per CaptureLead", f"{fmt(d, '+.0f')} µs", runs=cost_runs)
else:
    not_measured("CPU the integration consumer adds per CaptureLead", "tracked", "BENCH_INTEGRATION_COST=0")
# ---------------------------------------------------------------------------------- capacity
# What the figures above give for sizing (bench/README.md, "Capacity", says how to read them).
cap = []
if mem_total:
    cap.append(f"leads per GB of Redis (all of a lead's keys, events kept): {2**30 / mem_total:,.0f}"
               + (f"; without the outbox: {2**30 / (mem_total - mem_stream):,.0f}" if mem_stream else ""))
if c.cpu_per_call_us("redis") and not c.failed:
    cap.append(f"CaptureLead per Redis shard (one core, {c.cpu_per_call_us('redis'):.0f} µs each): "
               f"{1e6 / c.cpu_per_call_us('redis'):,.0f}/s")
if c.cpu_per_call_us("crm") and not c.failed:
    cap.append(f"CaptureLead per crm core ({c.cpu_per_call_us('crm'):.0f} µs each): {1e6 / c.cpu_per_call_us('crm'):,.0f}/s")
if bus and bf("bus_throughput_effect_eps") and bf("bus_partitions"):
    cap.append(f"events per second one consumer drains with the exactly-once effect: "
               f"{bf('bus_throughput_effect_eps'):,.0f} over {bf('bus_partitions'):.0f} partitions, "
               f"{bf('bus_throughput_effect_eps') / bf('bus_partitions'):,.0f} per partition")
if cap:
    out("Capacity (from this run):")
    for line in cap:
        out(f"  {line}")
    out("")

out(f"{'target (DESIGN.md §10)':<62} {'value':>10} {'goal':>14}  result")
out("-" * 97)
for name, shown, goal, res in targets:
    out(f"{name:<62} {shown:>10} {goal:>14}  {res}")
if half.rps is not None and meta.get("half_rps"):
    want = float(meta["half_rps"])
    if half.rps < 0.95 * want:
        out(f"note: (d) reached only {half.rps:.0f} of the {want:.0f} calls/s asked for")
if bus and bf("bus_lag_published_eps") is not None:
    if bf("bus_lag_published_eps") < 0.95 * float(bus_rate):
        out(f"note: (f) published only {bf('bus_lag_published_eps'):.0f} of the {bus_rate} events/s asked for")
out("")
if problems:
    out("ERRORS:")
    for p in problems:
        out(f"  {p}")
else:
    out("no run had more than 1% errors")

print("\n".join(lines))
sys.exit(1 if problems else 0)
