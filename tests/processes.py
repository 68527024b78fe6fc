"""Tests in fresh Python processes: start a helper script (the parent's side)
and join two of them with ``jax.distributed`` on this machine (the child's).

Imports nothing of JAX at module level, so a helper script can import it
before ``jax.distributed.initialize``.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def start(script: pathlib.Path, *args: str, stdout=subprocess.PIPE) -> subprocess.Popen:
    """``python script *args`` with this checkout first on the path and no
    ``XLA_FLAGS`` of ours (the script sets its own)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    return subprocess.Popen(
        [sys.executable, str(script), *args], env=env, stdout=stdout,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def reports(
    script: pathlib.Path, tmp_path, calls: list[list[str]], timeout: float
) -> list[dict]:
    """Run ``script MODE OUT *rest`` for each call ``[MODE, *rest]`` at once,
    each bounded by ``timeout`` seconds, and read the JSON each wrote to OUT."""
    outs = [tmp_path / f"report{i}.json" for i in range(len(calls))]
    procs = [
        start(script, c[0], str(o), *c[1:], stdout=subprocess.DEVNULL)
        for c, o in zip(calls, outs, strict=True)
    ]
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return [json.loads(o.read_text()) for o in outs]


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def join(process: int, port: str) -> None:
    """Join this process to the other over 127.0.0.1 (gloo collectives on
    CPUs); before any other JAX call."""
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        f"127.0.0.1:{port}", num_processes=2, process_id=process,
        initialization_timeout=40,
    )  # fmt: skip
