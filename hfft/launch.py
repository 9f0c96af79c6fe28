"""`hfft train --num-processes N`: relaunch the same command under torchrun on this machine."""

from __future__ import annotations

import argparse
import subprocess
import sys


def launch_command(args: argparse.Namespace) -> list[str]:
    """The torchrun command line equivalent to ``hfft train`` with N local processes."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={args.num_processes}",
        f"--max-restarts={args.max_restarts}",
        "-m",
        "hfft",
        "train",
        args.config,
        *args.overrides,
    ]
    if args.resume:
        cmd.append("--resume")
    return cmd


def relaunch(args: argparse.Namespace) -> int:
    """Run the torchrun command and return its exit code."""
    cmd = launch_command(args)
    print("launching: " + " ".join(cmd), flush=True)
    return subprocess.call(cmd)
