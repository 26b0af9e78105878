"""Runs a training command and samples memory as its round lines appear."""

import os
import re
import subprocess
import sys
from typing import Optional

import psutil

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUND_LINE = re.compile(r'^round (\d+)/(\d+): ')
WORKER_BINARY = 'worker_binary'


def python_module(module: str, *flags: str) -> list[str]:
  return [sys.executable, '-m', module, *flags]


def rss_mb(pid: int) -> float:
  return psutil.Process(pid).memory_info().rss / 2**20


def local_worker_pid(coordinator_pid: int) -> Optional[int]:
  """The TFF worker_binary the coordinator started, if any."""
  for child in psutil.Process(coordinator_pid).children(recursive=True):
    if child.name() == WORKER_BINARY:
      return child.pid
  return None


def run_sampling_rss(command: list[str], rounds_to_sample: set[int], *,
                     worker_pid: Optional[int] = None) -> tuple[dict, list[str]]:
  """Runs `command`; returns ({round: (coordinator MB, worker MB)}, stdout lines).

  The worker is `worker_pid`, or else the coordinator's own worker_binary.

  Raises:
    RuntimeError: the command failed.
  """
  process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True,
                             env={**os.environ, 'PYTHONUNBUFFERED': '1',
                                  'TF_CPP_MIN_LOG_LEVEL': '3'})
  samples, lines = {}, []
  for line in process.stdout:
    lines.append(line.rstrip('\n'))
    match = ROUND_LINE.match(line)
    if match and int(match.group(1)) in rounds_to_sample:
      worker = worker_pid or local_worker_pid(process.pid)
      samples[int(match.group(1))] = (rss_mb(process.pid), rss_mb(worker) if worker else None)
  if process.wait() != 0:
    raise RuntimeError(f'{" ".join(command)} exited with {process.returncode}:\n'
                       + '\n'.join(lines[-20:]))
  return samples, lines


def round_seconds(lines: list[str]) -> list[float]:
  """Seconds of each round, from the round lines."""
  return [float(line.rsplit(', ', 1)[1].rstrip('s')) for line in lines
          if ROUND_LINE.match(line)]
