"""Markdown table and PNG plot of an end-to-end bench result (``perf/bench.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COMPONENTS = (
    "ingest",
    "streams",
    "push",
    "broker",
    "redis",
    "client (load)",
    "client (subscribers)",
    "kernel irq",
    "other processes",
    "steal",
)


def rate(v: float) -> str:
    """12.5 -> "12.5", 2000.0 -> "2,000"."""
    return f"{v:,.1f}".removesuffix(".0")


def _ms(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def _total(d: dict[str, float]) -> int:
    return int(sum(d.values()))


def _rejected(by_reason: dict[str, int]) -> str:
    if not by_reason:
        return "0"
    return ", ".join(f"{n:,} ({reason})" for reason, n in sorted(by_reason.items()))


def _failures(step: dict[str, Any]) -> str:
    causes = step.get("ingest_failures") or {}
    return ", ".join(f"{k} {v:,.0f}" for k, v in sorted(causes.items()))


def write_markdown(result: dict[str, Any], path: Path) -> None:
    m = result["machine"]
    lines = [
        "# End-to-end benchmark",
        "",
        f"`{result['command']}`, {result['started_at']}, {result['wall_s']:.0f} s wall.",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, {m['os']}, "
        f"Python {m['python']}; {m['note']}; load average at start "
        f"{', '.join(str(x) for x in m['load_avg_at_start'])}.",
        f"System: {result['system']}.",
        "",
        "Latency is op posted (time stamped in the op by the load client) to the state "
        "received by each subscriber, over every delivery. Drops = deliveries expected "
        "(ops accepted x subscribers of the tenant) minus distinct deliveries received; "
        "push's own dropped/conflated counters are listed too. Rejected ops (by ingest, "
        "with the reason) are not expected to be delivered. CPU is % of one core over "
        f"the {result['duration_s']:g} s of load; RSS is the peak during it.",
        "",
    ]
    for name, prof in result["profiles"].items():
        t = prof["target"]
        target = [f"p99 <= {t['p99_ms']:g} ms"]
        if t["p50_ms"] is not None:
            target.insert(0, f"p50 <= {t['p50_ms']:g} ms")
        if t["zero_drops"]:
            target.append("zero drops")
        state = "not measured" if not t["measured"] else ("**met**" if t["met"] else "**MISSED**")
        best = prof["max_rate_p99_le_250ms"]
        bound = ">= " if prof["max_rate_is_lower_bound"] else ""
        lines += [
            f"## {name}: {prof['tenants']} tenant(s) x {prof['subscribers_per_tenant']} "
            f"subscribers ({prof['connections']:,} connections)",
            "",
            f"Target at {t['rate_ops_s']:,.0f} ops/s ({t['deliveries_per_s']:,.0f} deliveries/s): "
            f"{', '.join(target)} — {state}"
            + (f" ({'; '.join(t['misses'])})" if t["misses"] else "")
            + ". Highest rate with p99 <= 250 ms and >= 99 % of ops accepted: "
            + (f"{bound}{rate(best)} ops/s." if best else "none of the rates run."),
            "",
            "| ops/s | deliveries/s offered | ops/s accepted | ops rejected "
            "| deliveries got / expected "
            "| p50 ms | p95 ms | p99 ms | max ms | drops | push dropped | push conflated |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in prof["steps"]:
            lat = s["latency_ms"]
            lines.append(
                f"| {rate(s['rate_ops_s'])} | {s['deliveries_offered_per_s']:,.0f} "
                f"| {s['achieved_ops_s']:,.0f} | {_rejected(s['rejected_ops'])} "
                f"| {s['deliveries_got']:,} / {s['deliveries_expected']:,} "
                f"| {_ms(lat['p50'])} | {_ms(lat['p95'])} | {_ms(lat['p99'])} | {_ms(lat['max'])} "
                f"| {s['missing']:,} | {_total(s['push']['dropped']):,} "
                f"| {_total(s['push']['conflated']):,} |"
            )
        lines += [
            "",
            "Where the time goes (p50 / p99 ms): post -> ingest's received_at_ms stamp (this "
            "client's clock vs ingest's, same machine); stamp -> push socket write (push's "
            "own histogram, bucketed); ingest request round trip; load schedule lag (post "
            "time - scheduled time).",
            "",
            "| ops/s | post -> ingest stamp | stamp -> push write | ingest request "
            "| schedule lag p99 | requests |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for s in prof["steps"]:
            ing = s.get("post_to_ingest_stamp_ms") or {"p50": 0.0, "p99": 0.0}
            srv = s["push"]["server_e2e_ms"] or {"p50": 0.0, "p99": 0.0}
            ld = s["load"]
            lines.append(
                f"| {rate(s['rate_ops_s'])} | {_ms(ing['p50'])} / {_ms(ing['p99'])} "
                f"| {_ms(srv['p50'])} / {_ms(srv['p99'])} "
                f"| {_ms(ld['request_p50_ms'])} / {_ms(ld['request_p99_ms'])} "
                f"| {_ms(ld['schedule_lag_p99_ms'])} | {ld['requests']:,} |"
            )
        failed = [(s["rate_ops_s"], _failures(s)) for s in prof["steps"] if _failures(s)]
        if failed:
            lines += ["", "Ingest failures by code (its /metrics): " + "; ".join(
                f"{rate(r)} ops/s: {text}" for r, text in failed
            ) + "."]  # fmt: skip
        present = [c for c in COMPONENTS if any(c in s["cpu_pct"] for s in prof["steps"])]
        lines += [
            "",
            "CPU % of one core / peak RSS MiB per component; kernel irq: machine-wide "
            "interrupt and softirq time (loopback TCP); other processes: the rest of the "
            "machine's process time meanwhile, work that is not ours (steal: taken by the "
            "hypervisor, when any):",
            "",
            "| ops/s | " + " | ".join(present) + " |",
            "|---:|" + "---:|" * len(present),
        ]
        for s in prof["steps"]:
            cells = [
                f"{s['cpu_pct'].get(c, 0):.0f} / {s['rss_mib'][c]:.0f}"
                if c in s["rss_mib"]
                else f"{s['cpu_pct'].get(c, 0):.0f}"
                for c in present
            ]
            lines.append(f"| {rate(s['rate_ops_s'])} | " + " | ".join(cells) + " |")
        lines.append("")
    path.write_text("\n".join(lines))


def write_plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profiles = result["profiles"]
    fig, axes = plt.subplots(
        1, max(len(profiles), 1), figsize=(6 * max(len(profiles), 1), 4.5), squeeze=False
    )
    for ax, (name, prof) in zip(axes[0], profiles.items(), strict=False):
        steps = prof["steps"]
        rates = [s["rate_ops_s"] for s in steps]
        for key, style in (("p50", "o-"), ("p95", "s-"), ("p99", "^-"), ("max", "x:")):
            ax.plot(rates, [max(s["latency_ms"][key], 0.1) for s in steps], style, label=key)
        t = prof["target"]
        ax.axhline(250, color="grey", linestyle="--", linewidth=1, label="250 ms (sweep limit)")
        ax.axhline(t["p99_ms"], color="red", linestyle="--", linewidth=1, label="p99 target")
        if t["p50_ms"] is not None:
            ax.axhline(t["p50_ms"], color="orange", linestyle="--", linewidth=1, label="p50 target")
        ax.axvline(t["rate_ops_s"], color="green", linestyle=":", linewidth=1, label="target rate")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(rates or [t["rate_ops_s"]])
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: rate(v)))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("ops/s posted")
        ax.set_ylabel("end-to-end latency, ms")
        ax.set_title(
            f"{name}: {prof['tenants']} x {prof['subscribers_per_tenant']} subscribers "
            f"({prof['connections']:,} connections)"
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    m = result["machine"]
    fig.suptitle(
        f"syncpipe end-to-end latency vs rate — {m['cores']} cores, {m['memory_gib']} GiB, "
        "everything on one machine",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
