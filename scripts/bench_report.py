"""Writes the figures of BENCHMARKS.md and the plots in bench/ from bench/results (scripts/bench.sh).

    bench_report.py collect-criterion CRITERION_DIR OUT.json
    bench_report.py report RESULTS_DIR BENCHMARKS.md PLOT_DIR

`report` rewrites only what stands between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in
BENCHMARKS.md (a missing pair is appended under its own heading); the prose around the markers is
the analysis and is left alone. A part whose results are missing keeps its old section.
"""

import glob
import json
import os
import re
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# The goals of issue 17.
INIT_RATIO_GOAL = 0.03
ZIP_GOAL_BYTES = 4 * 1000 * 1000


def collect_criterion(criterion_dir, out):
    """Every benchmark's median and throughput from criterion's own files."""
    rows = []
    for bench in sorted(glob.glob(os.path.join(criterion_dir, "**", "new", "benchmark.json"), recursive=True)):
        with open(bench) as f:
            meta = json.load(f)
        with open(os.path.join(os.path.dirname(bench), "estimates.json")) as f:
            estimates = json.load(f)
        throughput = meta.get("throughput") or {}
        median = estimates["median"]
        rows.append(
            {
                "group": meta["group_id"],
                "name": meta.get("function_id") or meta.get("value_str") or meta["full_id"],
                "median_ns": median["point_estimate"],
                "low_ns": median["confidence_interval"]["lower_bound"],
                "high_ns": median["confidence_interval"]["upper_bound"],
                "bytes": throughput.get("Bytes") or throughput.get("BytesDecimal"),
            }
        )
    with open(out, "w") as f:
        json.dump(rows, f, indent=2)


def load(results, name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f) if name.endswith(".json") else f.read()


def command(results, name):
    text = load(results, name + ".command")
    load_avg = load(results, name + ".load")
    when = load(results, name + ".run")
    block = f"```text\n{text.strip()}\n```\n" if text else ""
    if when:
        block += f"\nFinished {when.strip()}."
    if load_avg:
        block += f" Load average (1, 5, 15 min) then: {load_avg.strip()}."
    block += "\n"
    return block


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def mib_s(row):
    return row["bytes"] / (row["median_ns"] / 1e9) / (1024 * 1024) if row.get("bytes") else None


def machine_section(results):
    m = load(results, "machine.json")
    if not m:
        return None
    dirty = " (with uncommitted changes)" if m.get("dirty") else ""
    return (
        f"Machine: `nproc` = {m['nproc']}, {m['cpu']}, {m['memory_gib']} GiB memory, "
        f"kernel {m['kernel']}, {m['rustc']}. Last `scripts/bench.sh` started {m['date']} at commit "
        f"{m['commit']}{dirty}, load average (1, 5, 15 min) {', '.join(m['load_average_before'])}; "
        "each part below says when it ran. "
        "Regenerate with `scripts/bench.sh` (see its header for the parts and settings).\n"
    )


def coldstart_section(results, plots):
    data = load(results, "coldstart.json")
    if not data:
        return None
    rows = [
        "| bootstrap | init (exec to first `next`) | first invocation | peak RSS (VmHWM) |",
        "|---|---|---|---|",
    ]
    for name, d in data.items():
        rows.append(
            f"| {name} | {d['median_init_ms']:.1f} ms | {d['median_invoke_ms']:.1f} ms | "
            f"{d['median_peak_rss_mib']:.1f} MiB |"
        )
    runs = next(iter(data.values()))["runs"]
    text = [f"Medians of {runs} cold starts each.", "", *rows, ""]
    peer = data.get("python-peer")
    for name in ("webhook", "poller"):
        d = data.get(name)
        if d and peer:
            ratio = d["median_init_ms"] / peer["median_init_ms"]
            verdict = "goal met" if ratio <= INIT_RATIO_GOAL else "goal not met"
            text.append(
                f"- {name} init / the peer's: **{ratio:.3f}×** (goal ≤ {INIT_RATIO_GOAL}×: {verdict}); "
                f"first invocation {d['median_invoke_ms'] / peer['median_invoke_ms']:.2f}×; "
                f"peak RSS {d['median_peak_rss_mib'] / peer['median_peak_rss_mib']:.2f}×."
            )
    plot = os.path.join(plots, "coldstart.png")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    names = list(data)
    for ax, key, label in zip(
        axes,
        ("init_ms", "invoke_ms", "peak_rss_mib"),
        ("init (ms, log)", "first invocation (ms, log)", "peak RSS (MiB)"),
    ):
        ax.boxplot([data[n][key] for n in names], tick_labels=names)
        if key != "peak_rss_mib":
            ax.set_yscale("log")
        ax.set_title(label)
        ax.tick_params(axis="x", labelrotation=15)
    fig.suptitle(f"Cold start, {runs} runs each")
    fig.tight_layout()
    fig.savefig(plot, dpi=90)
    plt.close(fig)
    text += ["", f"![cold start beside the Python peer]({plot})", "", command(results, "coldstart")]
    return "\n".join(text)


def zips_section(results):
    data = load(results, "zips.json")
    if not data:
        return None
    rows = ["| function | zip | bootstrap (unzipped) | goal ≤ 4 MB |", "|---|---|---|---|"]
    for name, d in data.items():
        ok = "✓" if d["zip_bytes"] <= ZIP_GOAL_BYTES else f"✗ (+{(d['zip_bytes'] - ZIP_GOAL_BYTES) / 1e6:.2f} MB)"
        rows.append(f"| {name} | {d['zip_bytes'] / 1e6:.2f} MB | {d['bootstrap_bytes'] / 1e6:.2f} MB | {ok} |")
    return "\n".join([*rows, "", command(results, "zips")])


def decode_section(results, plots):
    data = load(results, "decode.json")
    if not data:
        return None
    rows = ["| group | benchmark | median [95% CI] | input | throughput |", "|---|---|---|---|---|"]
    for r in data:
        speed = mib_s(r)
        rows.append(
            f"| {r['group']} | {r['name']} | {fmt_time(r['median_ns'])} "
            f"[{fmt_time(r['low_ns'])} {fmt_time(r['high_ns'])}] | "
            f"{(r['bytes'] or 0) / 1000:.1f} kB | {f'{speed:.1f} MiB/s' if speed else '—'} |"
        )
    text = [*rows, ""]
    by_name = {r["name"]: r for r in data}
    for floor, decode in (("floor/json-value-parse", "decode/json"), ("floor/quick-xml-scan", "decode/txml")):
        if floor in by_name and decode in by_name:
            text.append(
                f"- `{decode}` / `{floor}`: **{by_name[decode]['median_ns'] / by_name[floor]['median_ns']:.2f}×**"
            )
    with_size = [r for r in data if r.get("bytes")]
    if with_size:
        plot = os.path.join(plots, "decode.png")
        fig, ax = plt.subplots(figsize=(8, 4))
        for r in sorted(with_size, key=lambda r: r["bytes"]):
            ax.scatter(r["bytes"] / 1000, mib_s(r), label=f"{r['group']}: {r['name']}")
        ax.set_xscale("log")
        ax.set_xlabel("input size (kB, log)")
        ax.set_ylabel("throughput (MiB/s)")
        ax.set_title("Decode throughput by input size (criterion medians)")
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        fig.savefig(plot, dpi=90)
        plt.close(fig)
        text += ["", f"![decode throughput by input size]({plot})"]
    text += ["", command(results, "decode")]
    return "\n".join(text)


def poll_section(results):
    text = load(results, "poll.txt")
    if not text:
        return None
    return f"```text\n{text.strip()}\n```\n\n{command(results, 'poll')}"


def webhook_section(results, plots):
    folder = os.path.join(results, "webhook")
    if not os.path.isdir(folder):
        return None
    text = []
    md = os.path.join(folder, "webhook.md")
    if os.path.exists(md):
        with open(md) as f:
            text.append(f.read().strip())
    latencies = {}
    for path in sorted(glob.glob(os.path.join(folder, "webhook-latency*.txt"))):
        with open(path) as f:
            values = [float(v) for v in f.read().split() if re.match(r"^[0-9.eE+-]+$", v)]
        if values:
            latencies[os.path.basename(path)[len("webhook-latency") : -len(".txt")].strip("-_") or "run"] = values
    if latencies:
        plot = os.path.join(plots, "webhook-latency.png")
        fig, ax = plt.subplots(figsize=(8, 4))
        for name, values in latencies.items():
            ax.hist(values, bins=60, histtype="step", label=f"{name} (p50 {statistics.median(values):.1f} ms)")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("requests")
        ax.set_yscale("log")
        ax.set_title("Webhook latency distribution")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plot, dpi=90)
        plt.close(fig)
        text.append(f"![webhook latency distribution]({plot})")
    if not text:
        return None
    text.append(command(results, "webhook"))
    return "\n\n".join(text)


def replace_section(doc, name, body):
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(doc):
        return pattern.sub(lambda _: block, doc, count=1)
    return doc.rstrip() + f"\n\n## {name} (scripts/bench.sh)\n\n{block}\n"


def report(results, doc_path, plots):
    os.makedirs(plots, exist_ok=True)
    with open(doc_path) as f:
        doc = f.read()
    sections = {
        "machine": machine_section(results),
        "coldstart": coldstart_section(results, plots),
        "zips": zips_section(results),
        "decode": decode_section(results, plots),
        "poll": poll_section(results),
        "webhook": webhook_section(results, plots),
    }
    for name, body in sections.items():
        if body:
            doc = replace_section(doc, name, body)
    with open(doc_path, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "collect-criterion":
        collect_criterion(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
