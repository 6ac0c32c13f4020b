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

# The cold-start and zip-size goals BENCHMARKS.md measures against.
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
    by_name = {(r["group"], r["name"]): r for r in data}
    for group, clock in (("floor", "wall time"), ("floor-cpu", "thread CPU time")):
        for floor, decode in (("floor/json-value-parse", "decode/json"), ("floor/quick-xml-scan", "decode/txml")):
            if (group, floor) in by_name and (group, decode) in by_name:
                ratio = by_name[(group, decode)]["median_ns"] / by_name[(group, floor)]["median_ns"]
                text.append(f"- {clock} (`{group}`): `{decode}` / `{floor}`: **{ratio:.2f}×**")
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


def text_section(results, name):
    """A part whose program prints its own summary (`<name>.txt`), shown as it printed it."""
    text = load(results, name + ".txt")
    if not text:
        return None
    return f"```text\n{text.strip()}\n```\n\n{command(results, name)}"


def webhook_section(results, plots):
    """The summary of scripts/bench-webhook.sh (webhook/webhook.json) as a table, and its latency
    distributions (webhook/webhook-latency-c<N>.csv: percentile,latency_us) as one plot."""
    summary = load(results, os.path.join("webhook", "webhook.json"))
    if not summary:
        return None
    floor_rate = summary["floor"]["transactions_per_s"]
    body = summary["body"]
    text = [
        f"{body['lines']}-line order events of {body['bytes']:,} bytes, {summary['machine'].get('nproc')} "
        f"cores, run {summary['date']} at commit {summary['commit']}.",
        "",
        "| connections | req/s | × floor | p50 ms | p99 ms | max ms | errors | relay CPU ms/req "
        "| peak RSS MiB | on queue (distinct) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["runs"]:
        lat = r["latency_ms"]
        rss = f"{r['rss_peak_mib']:.1f}" if r.get("rss_peak_mib") else "?"
        text.append(
            f"| {r['connections']} | {r['requests_per_s']:.0f} | {r['ratio_to_floor']:.2f} "
            f"| {lat['p50']:.2f} | {lat['p99']:.2f} | {lat['max']:.1f} | {r['errors']} "
            f"| {r['relay_cpu_ms_per_request']:.2f} | {rss} | {r['queued']} ({r['queued_distinct']}) |"
        )
    text += [
        "",
        f"Floor: {floor_rate:.0f} durable {body['bytes']:,}-byte inserts/s, one per transaction "
        "(WAL, synchronous=FULL), on the same disk in the same run.",
    ]
    curves = {}
    for path in sorted(glob.glob(os.path.join(results, "webhook", "webhook-latency-c*.csv"))):
        points = []
        with open(path) as f:
            for line in f.read().splitlines()[1:]:
                percentile, latency_us = line.split(",")
                points.append((float(percentile), float(latency_us) / 1000))
        if points:
            connections = os.path.basename(path)[len("webhook-latency-c") : -len(".csv")]
            curves[connections] = points
    if curves:
        plot = os.path.join(plots, "webhook-latency.png")
        fig, ax = plt.subplots(figsize=(8, 4))
        for connections, points in sorted(curves.items(), key=lambda kv: int(kv[0])):
            ax.plot([100 - p for p, _ in points], [ms for _, ms in points], marker=".",
                    label=f"{connections} connection(s)")
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("percent of requests slower (log)")
        ax.set_ylabel("latency (ms)")
        ax.set_title("Webhook latency distribution (tcrelay serve, SQLite)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plot, dpi=90)
        plt.close(fig)
        text += ["", f"![webhook latency distribution]({plot})"]
    cmd = command(results, "webhook")
    if cmd:
        text += ["", cmd]
    return "\n".join(text)


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
        "instructions": text_section(results, "instructions"),
        "poll": text_section(results, "poll"),
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
