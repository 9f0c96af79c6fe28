"""`hfft train --num-processes N`: relaunch the same command under torchrun (or, with `--launch-config`,
accelerate launch) on this machine."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def launch_command(args: argparse.Namespace) -> list[str]:
    """The torchrun (or `accelerate launch --config_file`) command line equivalent to ``hfft train`` with N local
    processes."""
    if args.launch_config:
        from hfft.errors import ConfigError

        if not Path(args.launch_config).is_file():
            raise ConfigError(f"--launch-config '{args.launch_config}': no such file (an accelerate config YAML).")
        launcher = ["accelerate.commands.launch", "--config_file", args.launch_config, "--num_processes",
                    str(args.num_processes), "--max_restarts", str(args.max_restarts)]  # fmt: skip
    else:
        launcher = ["torch.distributed.run", "--standalone", f"--nproc_per_node={args.num_processes}",
                    f"--max-restarts={args.max_restarts}"]  # fmt: skip
    cmd = [sys.executable, "-m", *launcher, "-m", "hfft", "train", args.config, *args.overrides]
    if args.resume:
        cmd.append("--resume")
    return cmd


def relaunch(args: argparse.Namespace) -> int:
    """Run the torchrun command and return its exit code."""
    cmd = launch_command(args)
    print("launching: " + " ".join(cmd), flush=True)
    return subprocess.call(cmd)
