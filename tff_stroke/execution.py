"""Execution contexts: TFF's local C++ executor service, stopped when done."""

import atexit
import contextlib

import psutil
import tensorflow_federated as tff

WORKER_BINARY = 'worker_binary'


def stop_local_workers() -> None:
  """Stops `worker_binary` processes this process started.

  TFF stops its local worker only from a finalizer, which does not always
  run at interpreter exit; a left-over worker holds its parent's stdout open.
  """
  for child in psutil.Process().children(recursive=True):
    try:
      if child.name() == WORKER_BINARY:
        child.terminate()
        child.wait(timeout=10)
    except (psutil.NoSuchProcess, psutil.TimeoutExpired):
      pass


@contextlib.contextmanager
def local_cpp_context(max_concurrent_computation_calls: int = -1):
  """Runs computations on TFF's local C++ executor, stopped on exit.

  `max_concurrent_computation_calls` bounds the client computations run at
  once (-1: no bound).
  """
  tff.backends.native.set_sync_local_cpp_execution_context(
      max_concurrent_computation_calls=max_concurrent_computation_calls)
  try:
    yield
  finally:
    stop_local_workers()


atexit.register(stop_local_workers)
