"""TFF's C++ executor service (`worker_binary`) as a subprocess.

The binary ships in the TFF wheel. It listens on every interface in plain
gRPC (no TLS); see the README on running across machines. File paths in the
computations it runs are resolved against its working directory, which is
set to the folder holding its client shards.
"""

import importlib.util
import os
import socket
import subprocess
import time
from typing import Optional

# Found without importing TFF (and TensorFlow): starting a worker stays quick.
BINARY_PATH = os.path.join(
    os.path.dirname(importlib.util.find_spec('tensorflow_federated').origin),
    'data', 'worker_binary')
# Large enough for the model and its updates; TFF's own default is 10000.
MAX_MESSAGE_MEGABYTES = 2000
# glibc gives the worker's many threads malloc arenas of their own (up to
# eight per core), and its memory then creeps up round after round
# (benchmarks/bench_memory.py measured +18% over 180 rounds); two arenas keep
# it flat. Set unless the environment already sets it.
WORKER_ENVIRONMENT = {'MALLOC_ARENA_MAX': '2'}


def worker_environment() -> dict:
  """This process's environment with WORKER_ENVIRONMENT's defaults added."""
  return {**WORKER_ENVIRONMENT, **os.environ}


def start(port: int, data_dir: str, *,
          max_concurrent_computation_calls: Optional[int] = None,
          stdout=None, stderr=None) -> subprocess.Popen:
  """Starts `worker_binary --port=PORT` in `data_dir`.

  `max_concurrent_computation_calls` bounds the client computations run at
  once (default: the number of CPU cores; -1: no bound).

  Raises:
    FileNotFoundError: `data_dir` is not a folder, or the binary is missing.
  """
  if not os.path.isdir(data_dir):
    raise FileNotFoundError(f'{data_dir}: not a folder')
  if not os.path.isfile(BINARY_PATH):
    raise FileNotFoundError(f'{BINARY_PATH}: TFF worker binary not found')
  if max_concurrent_computation_calls is None:
    max_concurrent_computation_calls = os.cpu_count() or -1
  return subprocess.Popen(
      [BINARY_PATH, f'--port={port}',
       f'--grpc_max_message_length_megabytes={MAX_MESSAGE_MEGABYTES}',
       f'--max_concurrent_computation_calls={max_concurrent_computation_calls}'],
      cwd=data_dir, env=worker_environment(), stdout=stdout, stderr=stderr)


def wait_until_listening(process: subprocess.Popen, port: int,
                         timeout_seconds: float = 60.0) -> None:
  """Returns once `port` accepts connections on this machine.

  Raises:
    RuntimeError: the process exited first (for instance, the port is taken).
    TimeoutError: nothing listens on the port within the timeout.
  """
  deadline = time.monotonic() + timeout_seconds
  while time.monotonic() < deadline:
    if process.poll() is not None:
      raise RuntimeError(f'worker_binary on port {port} exited with status '
                         f'{process.returncode} before listening')
    try:
      with socket.create_connection(('127.0.0.1', port), timeout=1.0):
        return
    except OSError:
      time.sleep(0.2)
  raise TimeoutError(f'worker_binary on port {port}: not listening after '
                     f'{timeout_seconds:g} s')


def stop(process: subprocess.Popen, timeout_seconds: float = 10.0) -> int:
  """Stops the worker (SIGTERM, then SIGKILL); returns its exit status."""
  if process.poll() is None:
    process.terminate()
    try:
      process.wait(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()
  return process.returncode
