#!/usr/bin/env python3
"""bench/webhookstages.py BEFORE AFTER: where a webhook delivery's time goes.

Reads two scrapes of crm's /metrics (Prometheus text, before and after the webhook run) and prints,
for each stage of crm.webhook.stage.duration (services/integration/metrics.go: read, batch, record,
queue, send), its count, mean and p99 over the run as "name value" lines:
webhook_stage_<stage>_count, _mean_ms, _p99_ms. The p99 is interpolated within its histogram
bucket (the buckets are fine below 10 ms, coarser above); the means add up to the mean time from
commit to the receiver's answer, so their shares show which stage the time goes to.
"""
import re
import sys

STAGES = ["read", "batch", "record", "queue", "send"]
LINE = re.compile(r'^crm_webhook_stage_duration_seconds_(bucket|sum|count)\{([^}]*)\}\s+(\S+)')


def scrape(path):
    out = {}
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            kind, labels, value = m.groups()
            attrs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            stage = attrs.get("stage")
            if stage is None:
                continue
            s = out.setdefault(stage, {"buckets": {}, "sum": 0.0, "count": 0.0})
            if kind == "bucket":
                le = attrs["le"]
                s["buckets"][float("inf") if le == "+Inf" else float(le)] = float(value)
            else:
                s[kind] = float(value)
    return out


def quantile(buckets, q):
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for b in bounds:
        n = buckets[b]
        if n >= rank:
            if b == float("inf"):
                return lower
            inside = n - below
            return lower + (b - lower) * ((rank - below) / inside if inside > 0 else 1)
        lower, below = b, n
    return lower


def main():
    before, after = scrape(sys.argv[1]), scrape(sys.argv[2])
    for stage in STAGES:
        a = after.get(stage)
        if a is None:
            continue
        b = before.get(stage, {"buckets": {}, "sum": 0.0, "count": 0.0})
        count = a["count"] - b["count"]
        if count <= 0:
            continue
        buckets = {le: n - b["buckets"].get(le, 0.0) for le, n in a["buckets"].items()}
        p99 = quantile(buckets, 0.99)
        print(f"webhook_stage_{stage}_count {count:.0f}")
        print(f"webhook_stage_{stage}_mean_ms {1000 * (a['sum'] - b['sum']) / count:.2f}")
        print(f"webhook_stage_{stage}_p99_ms {1000 * p99:.2f}")


if __name__ == "__main__":
    main()
