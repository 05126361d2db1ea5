#!/usr/bin/env python3
"""Latency versus load, from the reports examples/bench.sh leaves in
target/bench/: median over the runs of p50, p99 and p99.9 for each offered
rate, drawn as an SVG with no dependencies beyond Python.

    python3 docs/bench/plot.py target/bench docs/bench/latency.svg
"""
import re
import statistics
import sys
from pathlib import Path

PERCENTILES = [("p50", "#3b6cf6"), ("p99", "#e08a00"), ("p99.9", "#d93b3b")]


def load(directory):
    """{rate: {"p50": [ms, ...], ..., "received": [per s, ...]}}"""
    points = {}
    for report in sorted(Path(directory).glob("latency-*.txt")):
        text = report.read_text()
        rate = int(re.search(r"(\d+) msg/s open loop", text).group(1))
        latency = re.search(r"latency ms:\s+(.*)", text).group(1)
        values = dict(re.findall(r"(p[\d.]+|max) ([\d.]+)", latency))
        received = float(re.search(r"received:\s+\d+ \((\d+)/s\)", text).group(1))
        entry = points.setdefault(rate, {"received": []})
        entry["received"].append(received)
        for name, _ in PERCENTILES:
            entry.setdefault(name, []).append(float(values[name]))
    return points


def svg(points):
    width, height, left, bottom, top, right = 640, 400, 70, 50, 30, 20
    rates = sorted(points)
    max_rate = max(rates)
    # Log scale for latency: 0.1 ms .. the largest median seen.
    import math

    medians = {
        rate: {name: statistics.median(points[rate][name]) for name, _ in PERCENTILES}
        for rate in rates
    }
    high = max(max(m.values()) for m in medians.values())
    low_exp, high_exp = -1, math.ceil(math.log10(max(high, 1)))

    def x(rate):
        return left + (width - left - right) * rate / max_rate

    def y(ms):
        ms = max(ms, 10**low_exp)
        frac = (math.log10(ms) - low_exp) / (high_exp - low_exp)
        return height - bottom - (height - bottom - top) * frac

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">'
        "Send → receive latency vs offered load (median of runs)</text>",
    ]
    for e in range(low_exp, high_exp + 1):
        yy = y(10**e)
        label = f"{10**e:g} ms"
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{yy}" y2="{yy}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4}" text-anchor="end">{label}</text>')
    for rate in rates:
        xx = x(rate)
        out.append(f'<line x1="{xx}" x2="{xx}" y1="{top}" y2="{height - bottom}" stroke="#eee"/>')
        out.append(f'<text x="{xx}" y="{height - bottom + 16}" text-anchor="middle">{rate}</text>')
    out.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 12}" text-anchor="middle">'
        "offered messages per second (open loop, 1000 users in 500 pairs)</text>"
    )
    for i, (name, colour) in enumerate(PERCENTILES):
        path = " ".join(f"{x(r):.1f},{y(medians[r][name]):.1f}" for r in rates)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for r in rates:
            out.append(f'<circle cx="{x(r):.1f}" cy="{y(medians[r][name]):.1f}" r="3" fill="{colour}"/>')
        out.append(f'<text x="{left + 10 + 70 * i}" y="{top + 14}" fill="{colour}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out)


def main():
    source, target = sys.argv[1], sys.argv[2]
    points = load(source)
    if not points:
        sys.exit(f"no latency-*.txt reports in {source}")
    Path(target).write_text(svg(points))
    for rate in sorted(points):
        m = {n: statistics.median(points[rate][n]) for n, _ in PERCENTILES}
        got = statistics.median(points[rate]["received"])
        print(f"{rate:>6} offered, {got:>6.0f}/s received: "
              + "  ".join(f"{n} {v:.3f} ms" for n, v in m.items()))


if __name__ == "__main__":
    main()
