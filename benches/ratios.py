#!/usr/bin/env python3
"""Print ours/raw ratios of criterion medians, from target/criterion (after `cargo bench`).

A ratio above 1.0 means ours takes longer than the raw call. Usage: python3 benches/ratios.py [criterion dir]
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
rows = []
for group in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "report"):
    found = {}
    for est in group.glob("**/new/estimates.json"):
        side = next((part for part in est.parts if part in ("ours", "raw")), None)
        if side:
            found[side] = json.loads(est.read_text())["median"]["point_estimate"]
    if "ours" in found and "raw" in found:
        rows.append((group.name, found["ours"], found["raw"], found["ours"] / found["raw"]))

print(f"{'group':<22}{'ours median':>16}{'raw median':>16}{'ours/raw':>10}")
for name, ours, raw, ratio in rows:
    print(f"{name:<22}{ours / 1e3:>13.2f} us{raw / 1e3:>13.2f} us{ratio:>10.3f}")
