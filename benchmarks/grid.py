"""Shared by the per-task benchmarks (asr.py, ner.py): this CPU's bf16 flags, other processes' load while a
variant runs, the machine header of a results file, and the loop that runs a grid of variants and writes
benchmarks/results/<stamp>-<name>[-quick].{json,md}."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402
from run import cores, cpu_bf16_flags, cpu_busy_seconds, cpu_name, worker_env  # noqa: E402

HEAVY = 0.25  # cores: another process busier than this during a run is listed


def process_cpu() -> dict[int, tuple[str, int, float]]:
    """Command line, parent pid and CPU seconds (user + system) of every process now running, except this one."""
    tick, out = os.sysconf("SC_CLK_TCK"), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            name = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(entry.name)] = (name[:60] or "?", int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return out


def heavy_others(
    first: dict[int, float], seen: dict[int, tuple[str, int, float]], child: int, seconds: float
) -> list[str]:
    """Other processes (not the run nor its children) that kept more than HEAVY cores busy during the run, from
    snapshots taken every 2 s (processes that start and end between two snapshots are missed)."""
    busy = [
        (pid, name, (cpu - first.get(pid, 0.0)) / seconds)
        for pid, (name, ppid, cpu) in seen.items()
        if child not in (pid, ppid)
    ]
    return [f"{name} (pid {pid}): {load:.2f} cores" for pid, name, load in busy if load > HEAVY]


def run_train(
    recipe: Path,
    overrides: list[str],
    metric_keys: tuple[str, ...],
    label: dict[str, str],
    timeout: float,
    log: Path,
    threads: int | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    """One `hfft train RECIPE OVERRIDES` process: ``metric_keys`` of its all_results.json (the run's output_dir is
    the last `training.output_dir=` override), peak RSS (wait4), wall time, and the machine's load around it;
    ``label`` (e.g. method and precision) starts the row. ``threads``: pin the run to that many OpenMP threads
    (passive waiting), for runs that share the cores with other work. ``command``: another program (a plain
    baseline script) that writes all_results.json into the same output_dir."""
    out_dir = Path(next(o.split("=", 1)[1] for o in reversed(overrides) if o.startswith("training.output_dir=")))
    cmd = command or [sys.executable, "-m", "hfft", "train", str(recipe), *overrides]
    seen = process_cpu()
    first = {pid: cpu for pid, (_, _, cpu) in seen.items()}
    load_before, busy_before, started = os.getloadavg()[0], cpu_busy_seconds(), time.time()
    with open(log, "w") as log_file:
        env = worker_env()
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        polls = 0
        while not (done := os.wait4(proc.pid, os.WNOHANG))[0]:  # wait4: the child's own peak RSS
            if time.time() > started + timeout:
                proc.kill()
                done = os.wait4(proc.pid, 0)
                break
            polls += 1
            if polls % 4 == 0:
                seen.update(process_cpu())
            time.sleep(0.5)
    seen.update(process_cpu())
    _, status, usage = done
    wall = time.time() - started
    row: dict[str, Any] = {**label, "ok": False, "wall_s": round(wall, 1)}
    results = out_dir / "all_results.json"
    if os.waitstatus_to_exitcode(status) == 0 and results.is_file():
        metrics = json.loads(results.read_text())
        row.update({k: metrics.get(k) for k in metric_keys}, ok=True, hfft_wall_time_s=metrics.get("wall_time_s"))
    else:
        row["error"] = log.read_text()[-2000:]
        print(f"  {'/'.join(label.values())} FAILED (see {log}):\n{row['error'][-800:]}", flush=True)
    own = usage.ru_utime + usage.ru_stime
    row.update(
        peak_rss_mb=round(usage.ru_maxrss / 1024),
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        other_cores_busy=round(max(0.0, (cpu_busy_seconds() - busy_before - own) / max(wall, 1e-6)), 2),
        heavy_processes=heavy_others(first, seen, proc.pid, wall),
        command=" ".join(map(str, command))
        if command
        else " ".join(["hfft", "train", os.path.relpath(recipe, ROOT), *overrides]),
    )
    return row


def baseline_bf16(precision: str) -> list[str]:
    """A plain baseline script's precision flag: `--bf16` for hfft's `default` precision where the CPU has native
    bf16 (what a careful user on such a CPU sets: the (B+bf16) baseline), none otherwise."""
    from hfft.perf import native_cpu_bf16

    return ["--bf16"] if precision == "default" and native_cpu_bf16() else []


def baseline_ratio_lines(
    meta: dict[str, Any], rows: list[dict[str, Any]], case: str, script: str, method: str = "full"
) -> str:
    """`<case> ratio vs B: n` (or `vs B+bf16`) per precision: hfft's ``method`` run over the plain ``script``'s
    (method B) train samples/s, with the machine class; empty without a B row."""
    lines = []
    for precision in meta["precisions"]:
        found = {r["method"]: r for r in rows if r["precision"] == precision and r["ok"]}
        if "B" in found and method in found:
            ratio = found[method]["train_samples_per_second"] / found["B"]["train_samples_per_second"]
            kind = "B+bf16" if precision == "default" and meta["native_bf16"] else "B"
            machine = "native bf16" if meta["native_bf16"] else "no native bf16"
            lines.append(f"{case} ratio vs {kind}: {ratio:.2f} (hfft {method} / {script}, train samples/s; {machine}, "
                         f"{precision})")  # fmt: skip
    return "\n" + "\n".join(lines) + "\n" if lines else ""


def add_grid_arguments(parser: argparse.ArgumentParser, methods: str, timeout: float) -> None:
    """The options every per-task benchmark shares: which variants, seed, timeout, where results go."""
    parser.add_argument("--methods", default=methods, help=f"comma-separated: {methods}")
    parser.add_argument("--precisions", default="default,fp32", help="comma-separated: default (hfft's), fp32")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=timeout, help="seconds before a run is killed")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))


def report(
    meta: dict[str, Any],
    task: str,
    data: str,
    rows: list[dict[str, Any]],
    speed: dict[str, str],
    quality: dict[str, str],
    digits: int = 1,
) -> str:
    """A results file as Markdown: the machine (CPU, native bf16) and command, ``data`` (what was trained on),
    then one row per variant: ``speed`` and ``quality`` map result keys to column titles."""
    columns = ["method", "precision", *speed.values(), "wall s", "peak RSS MB", *quality.values(),
               "load 1 min before → after", "other procs' busy cores", "heavy processes"]  # fmt: skip
    lines = [
        f"# hfft {task} benchmark, {meta['date']}",
        "",
        f"Machine: {meta['cpu']}, {meta['cores']} cores; native bf16: {meta['native_bf16']} "
        f"(flags: {', '.join(meta['bf16_flags']) or 'none'}); torch {meta['torch']}, transformers "
        f"{meta['transformers']}. Command: `{meta['command']}` ({meta['duration_s']} s). Data: {data}",
        "",
        "| " + " | ".join(columns) + " |",
        "|---" * len(columns) + "|",
    ]
    for r in rows:
        cells = [f"{r[k]:.{digits}f}" if r.get(k) is not None else "–" for k in speed]
        scores = [f"{r[k]:.3f}" if r.get(k) is not None else "–" for k in quality]
        lines.append(
            f"| {r['method']} | {meta['precisions'][r['precision']]} | {' | '.join(cells)} | {r['wall_s']} "
            f"| {r['peak_rss_mb']} | {' | '.join(scores)} | {r['load_before']} → {r['load_after']} "
            f"| {r['other_cores_busy']} | {'; '.join(r['heavy_processes']) or 'none'} |"
        )
    return "\n".join(lines) + "\n"


def machine_meta(args: argparse.Namespace, **settings: Any) -> dict[str, Any]:
    """The machine, versions, command and run ``settings`` of a results file."""
    import torch
    import transformers

    from hfft.perf import native_cpu_bf16

    bf16 = native_cpu_bf16()
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_name(),
        "cores": cores(),
        "native_bf16": bf16,
        "bf16_flags": cpu_bf16_flags(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        **settings,
        "precisions": {
            "default": "hfft default (bf16 autocast)" if bf16 else "hfft default (float32)",
            "fp32": "float32",
        },
    }


def run_grid(
    name: str,
    args: argparse.Namespace,
    meta: dict[str, Any],
    run_variant: Callable[[str, str, argparse.Namespace, Path], dict[str, Any]],
    markdown: Callable[[dict[str, Any], list[dict[str, Any]]], str],
) -> None:
    """Every method x precision of ``args``, one after the other; writes the JSON and Markdown results and
    exits non-zero when a variant failed."""
    started = time.time()
    print(f"machine: {meta['cpu']}, {meta['cores']} cores, native bf16 {meta['native_bf16']}; "
          f"load {os.getloadavg()}", flush=True)  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"hfft-{name}-bench-") as work:
        for method in args.methods.split(","):
            for precision in args.precisions.split(","):
                rows.append(run_variant(method, precision, args, Path(work)))
                print(
                    f"[{time.time() - started:5.0f}s] {method}/{precision}: " + json.dumps(rows[-1])[:400], flush=True
                )
    meta["duration_s"] = round(time.time() - started)
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{name}" + ("-quick" if args.quick else "")
    (out / f"{stamp}.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=1))
    report = markdown(meta, rows)
    (out / f"{stamp}.md").write_text(report)
    print("\n" + report + f"\nresults: {out / stamp}.json / .md")
    sys.exit(0 if all(r["ok"] for r in rows) else 1)
