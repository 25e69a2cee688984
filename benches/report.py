#!/usr/bin/env python3
"""Turns criterion's saved estimates into the README's benchmark tables.

    cargo bench --bench native && cargo bench --bench wasm
    python3 benches/report.py            # markdown on stdout, also target/criterion/flare-report.md

For every criterion group: each allocator's median time per element, its throughput, and the
ratio of its time to flare-arena's in the same group (> 1 means slower than flare-arena).
The footprint tables come from target/criterion/flare-footprint.json and flare-component.json,
the table of allocators taking turns from flare-paired.json,
written by the wasm bench.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRITERION = ROOT / "target" / "criterion"
REFERENCES = ("flare-arena (GlobalAlloc)", "flare-arena", "flare-arena (Arena)")


def load():
    groups = {}
    for bench in CRITERION.glob("**/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        elements = (meta.get("throughput") or {}).get("Elements", 1)
        median_ns = estimates["median"]["point_estimate"]
        groups.setdefault(meta["group_id"], {})[meta["function_id"]] = (median_ns, elements)
    return groups


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.2f} ns"


def table(name, rows):
    reference = next((rows[r] for r in REFERENCES if r in rows), None)
    out = [f"#### {name}", "", "| allocator | median per element | throughput | time ÷ flare-arena's |", "|---|---:|---:|---:|"]
    for function, (median_ns, elements) in sorted(rows.items(), key=lambda kv: kv[1][0]):
        per = median_ns / elements
        ratio = f"{median_ns / reference[0]:.2f}" if reference else "n/a"
        out.append(f"| {function} | {fmt_time(per)} | {elements / median_ns * 1e3:.1f} M/s | {ratio} |")
    return "\n".join(out) + "\n"


def matrix(title, names, groups):
    """One table: a row per workload, a column per allocator, median per element (× flare's)."""
    columns = []
    for g in names:
        for function in groups[g]:
            if function not in columns:
                columns.append(function)
    columns.sort(key=lambda c: (0 if c.startswith("flare") else 1, c))
    out = [f"#### {title}", "", "| workload | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for g in names:
        rows = groups[g]
        reference = next((rows[r] for r in REFERENCES if r in rows), None)
        cells = []
        for c in columns:
            if c not in rows:
                cells.append("–")
                continue
            median_ns, elements = rows[c]
            ratio = f" ({median_ns / reference[0]:.2f}×)" if reference and not c.startswith("flare") else ""
            cells.append(f"{fmt_time(median_ns / elements)}{ratio}")
        out.append(f"| {g} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main():
    groups = load()
    if not groups:
        sys.exit("no criterion results under target/criterion: run `cargo bench` first")
    native = sorted(g for g in groups if not g.startswith("wasm_"))
    wasm = sorted(g for g in groups if g.startswith("wasm_"))
    parts = ["### Summary: median time per element (× flare-arena's time in the same workload)\n"]
    if wasm:
        parts.append(matrix("wasm32 in wasmtime", wasm, groups))
    if native:
        parts.append(matrix("native (x86_64, glibc)", native, groups))
    paired = CRITERION / "flare-paired.json"
    if paired.exists():
        rows = json.loads(paired.read_text())
        names = list(dict.fromkeys(r["allocator"] for r in rows))
        workloads = list(dict.fromkeys(r["workload"] for r in rows))
        ns = {(r["workload"], r["allocator"]): r["ns_per_element"] for r in rows}
        parts.append(f"#### wasm32, the allocators taking turns ({rows[0]['rounds']} rounds)\n")
        parts.append("| workload | " + " | ".join(names) + " |")
        parts.append("|---|" + "---:|" * len(names))
        for w in workloads:
            ours = ns[(w, names[0])]
            cells = [fmt_time(ns[(w, n)]) + ("" if i == 0 else f" ({ns[(w, n)] / ours:.2f}×)")
                     if (w, n) in ns else "–" for i, n in enumerate(names)]
            parts.append(f"| wasm_{w} | " + " | ".join(cells) + " |")
        parts.append("")
    if wasm:
        parts.append("### wasm32 (in wasmtime)\n")
        parts += [table(g, groups[g]) for g in wasm]
    footprint = CRITERION / "flare-footprint.json"
    if footprint.exists():
        rows = json.loads(footprint.read_text())
        key = next(k for k in rows[0] if k.startswith("pages_after_"))
        parts.append("### Footprint: code bytes and pages of linear memory (64 KiB each)\n")
        parts.append("| allocator | minimal flare .wasm | realistic flare .wasm | realistic flare, 10,000 requests "
                     "| stateless | counter map | TTL config | LRU of 64 URLs | churn | churn + realloc |")
        parts.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            cells = [r["allocator"], f"{r['minimal_wasm_bytes']} B", f"{r['flare_wasm_bytes']} B", r[key],
                     r["stateless_pages"], r["counter_pages"], r["ttl_pages"], r["lru_pages"],
                     r["churn_pages"], r["churn_realloc_pages"]]
            parts.append("| " + " | ".join(str(c) for c in cells) + " |")
        parts.append("")
        parts.append("Minimal flare: `--profile small` (opt-level z, LTO, one codegen unit, stripped). Pages: "
                     "linear memory after 10,000 requests of the realistic flare, after 20,000 requests of each "
                     "stateful flare (tests/guests/stateful), and after one churn call per seed 0..8 (its peak, "
                     "since memory never shrinks).\n")
    component = CRITERION / "flare-component.json"
    if component.exists():
        rows = json.loads(component.read_text())
        key = next(k for k in rows[0] if k.startswith("pages_after_"))
        parts.append("### The WASI component: code bytes and pages of linear memory\n")
        parts.append("| allocator | component .wasm | pages after 20,000 `summarize` calls |")
        parts.append("|---|---:|---:|")
        for r in rows:
            parts.append(f"| {r['allocator']} | {r['wasm_bytes']} B | {r[key]} |")
        parts.append("")
    if native:
        parts.append("### Native\n")
        parts += [table(g, groups[g]) for g in native]
    report = "\n".join(parts)
    (CRITERION / "flare-report.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
