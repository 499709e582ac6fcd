"""What a benchmark ran on: CPU, memory, GPU, and the onnxruntime build."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import onnxruntime as ort

from ..session import default_threads, installed_onnxruntime_distributions


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, the 1-minute load average now, OS, Python, GPUs (when nvidia-smi answers) and the
    onnxruntime build."""
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "default_threads": default_threads(),
        "memory_gib": round(_meminfo_kib("MemTotal") / 2**20, 1),
        "load_average": os.getloadavg()[0],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "gpus": _nvidia_gpus(),
        "onnxruntime": {
            "version": ort.__version__,
            "distributions": installed_onnxruntime_distributions(),
            "available_providers": ort.get_available_providers(),
            "device": ort.get_device(),
        },
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _meminfo_kib(field: str) -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _nvidia_gpus() -> list[dict[str, str]]:
    """Name, driver and memory of each NVIDIA GPU; empty where nvidia-smi is absent or fails."""
    if shutil.which("nvidia-smi") is None:
        return []
    query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
    try:
        lines = subprocess.run(query, capture_output=True, text=True, timeout=30, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in lines:
        name, driver, memory = (part.strip() for part in line.split(","))
        gpus.append({"name": name, "driver": driver, "memory": memory})
    return gpus
