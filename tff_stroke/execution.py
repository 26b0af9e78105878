"""Execution contexts: TFF's C++ executor service, local or on remote workers.

Local: one `worker_binary` subprocess (`worker_service`), stopped on exit.
Remote: one `tff.framework.RemoteExecutor` per worker (`worker_binary` on
another machine), each inside an async context, joined by a mergeable
execution context that spreads a round's clients over them.
"""

import asyncio
import atexit
import collections
import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Optional

import grpc
import portpicker
import psutil
import tensorflow_federated as tff
from tensorflow_federated.python.common_libs import async_utils
from tensorflow_federated.python.core.backends.native import compiler
from tensorflow_federated.python.core.backends.native import mergeable_comp_compiler
from tensorflow_federated.python.core.environments.tensorflow_frontend import tensorflow_computation
from tensorflow_federated.python.core.impl.context_stack import context_base
from tensorflow_federated.python.core.impl.context_stack import context_stack_impl
from tensorflow_federated.python.core.impl.executors import executor_base
from tensorflow_federated.python.core.impl.executors import executors_errors

from tff_stroke import routing
from tff_stroke import worker_service

WORKER_BINARY = 'worker_binary'
_GRPC_OPTIONS = [
    ('grpc.max_message_length', worker_service.MAX_MESSAGE_MEGABYTES * 2**20),
    ('grpc.max_receive_message_length', worker_service.MAX_MESSAGE_MEGABYTES * 2**20),
    ('grpc.max_send_message_length', worker_service.MAX_MESSAGE_MEGABYTES * 2**20),
]


def stop_local_workers() -> None:
  """Stops `worker_binary` processes this process started (at exit).

  Computations run outside `local_cpp_context` start TFF's default local
  worker, which TFF stops only from a finalizer that does not always run at
  interpreter exit; a left-over worker holds its parent's stdout open.
  """
  for child in psutil.Process().children(recursive=True):
    try:
      if child.name() == WORKER_BINARY:
        child.terminate()
        child.wait(timeout=10)
    except (psutil.NoSuchProcess, psutil.TimeoutExpired):
      pass


@contextlib.contextmanager
def local_cpp_context(max_concurrent_computation_calls: Optional[int] = None,
                      retry_seconds: float = 60.0):
  """Runs computations on TFF's C++ executor service in a local subprocess.

  As TFF's own local context, with two differences: executors are kept for
  few cardinalities (`BoundedExecutorFactory`), and a worker that stops
  answering raises WorkerLostError after `retry_seconds`.
  `max_concurrent_computation_calls` bounds the client computations run at
  once: by default the number of CPU cores (each client step already uses
  TensorFlow's threads; benchmarks/bench_round.py measured rounds about 30%
  faster on 2 cores than without a bound); -1: no bound. The worker runs in
  the current directory, so relative paths mean the same to it.
  """
  port = portpicker.pick_unused_port()
  process = worker_service.start(
      port, os.getcwd(), max_concurrent_computation_calls=max_concurrent_computation_calls)
  channel = grpc.insecure_channel(f'localhost:{port}', _GRPC_OPTIONS)
  try:
    worker_service.wait_until_listening(process, port)
    context_stack_impl.context_stack.set_default_context(_SyncContext(
        _WorkerContext(f'localhost:{port}', channel, retry_seconds)))
    yield
  finally:
    channel.close()
    worker_service.stop(process)


@dataclasses.dataclass(frozen=True)
class Worker:
  """A remote `worker_binary`, and the sites whose shards it holds (none: all)."""
  address: str
  sites: tuple[str, ...] = ()


def parse_workers(specs: Sequence[str]) -> list[Worker]:
  """Workers from 'HOST:PORT' or 'SITE[+SITE...]@HOST:PORT' items.

  Raises:
    ValueError: an item is malformed, an address repeats, or some workers
      name sites and others do not.
  """
  workers = []
  for spec in specs:
    sites, _, address = spec.rpartition('@')
    host, _, port = address.rpartition(':')
    if not host or not port.isdigit():
      raise ValueError(f'worker {spec!r}: expected HOST:PORT or SITE[+SITE...]@HOST:PORT')
    workers.append(Worker(address, tuple(s for s in sites.split('+') if s)))
  if not workers:
    raise ValueError('no workers given')
  addresses = [w.address for w in workers]
  if len(set(addresses)) != len(addresses):
    raise ValueError(f'a worker address repeats: {addresses}')
  if len({bool(w.sites) for w in workers}) > 1:
    raise ValueError('either every worker names the sites it holds or none does; found '
                     f'{list(specs)}')
  return workers


class WorkerUnreachableError(ConnectionError):
  """A worker did not answer when the run started."""


class WorkerLostError(ConnectionError):
  """A worker stopped answering during a computation and did not come back."""

  def __init__(self, address: str, cause: Exception):
    super().__init__(f'worker {address} stopped answering ({_describe(cause)})')
    self.address = address


def _describe(error: Exception) -> str:
  if isinstance(error, grpc.RpcError) and hasattr(error, 'code'):
    return f'{error.code().name}: {error.details()}'
  return f'{type(error).__name__}: {error}'


def check_reachable(workers: Sequence[Worker], timeout_seconds: float) -> None:
  """Raises WorkerUnreachableError naming every worker that does not answer."""
  silent = []
  for worker in workers:
    channel = grpc.insecure_channel(worker.address, _GRPC_OPTIONS)
    try:
      grpc.channel_ready_future(channel).result(timeout=timeout_seconds)
    except grpc.FutureTimeoutError:
      silent.append(worker.address)
    finally:
      channel.close()
  if silent:
    raise WorkerUnreachableError(
        f'worker(s) {", ".join(silent)} did not answer within {timeout_seconds:g} s; '
        'start them with `python -m experiments.start_worker --port=PORT '
        '--data_dir=SHARDS` (and check the address, tunnel or firewall)')


class _WorkerContext(tff.framework.AsyncExecutionContext):
  """TFF's async context on one worker, retrying a lost worker for a while only.

  TFF retries calls that fail with UNAVAILABLE forever; here a worker that is
  restarted within `retry_seconds` is used again, and one that is not raises
  WorkerLostError, so the run stops at a round boundary.
  """

  def __init__(self, address: str, channel: grpc.Channel, retry_seconds: float):
    stub = tff.framework.RemoteExecutorGrpcStub(channel)

    def stack_fn(cardinalities):
      cardinalities = dict(cardinalities)
      cardinalities.setdefault(tff.CLIENTS, 0)  # unknown, as in TFF's local stack
      executor = tff.framework.RemoteExecutor(stub)
      executor.set_cardinalities(cardinalities)
      return executor

    super().__init__(BoundedExecutorFactory(stack_fn),
                     compiler_fn=compiler.desugar_and_transform_to_native,
                     transform_args=tensorflow_computation.transform_args,
                     transform_result=tensorflow_computation.transform_result)
    self.address = address
    self._retry_seconds = retry_seconds

  async def invoke(self, comp, arg):
    deadline = time.monotonic() + self._retry_seconds
    wait_seconds = 0.5
    while True:
      try:
        return await _INVOKE_ONCE(self, comp, arg)
      except executors_errors.RetryableError as e:
        if time.monotonic() + wait_seconds > deadline:
          raise WorkerLostError(self.address, e) from e
        await asyncio.sleep(wait_seconds)
        wait_seconds = min(2 * wait_seconds, 5.0)


# AsyncExecutionContext.invoke without TFF's unbounded retry decorator.
_INVOKE_ONCE = tff.framework.AsyncExecutionContext.invoke.__wrapped__


class _SyncContext(context_base.SyncContext):
  """An async context for synchronous callers, as TFF's sync contexts do."""

  def __init__(self, context: context_base.AsyncContext):
    self._context = context
    self._runner = async_utils.AsyncThreadRunner()

  def invoke(self, comp, arg):
    return self._runner.run_coro_and_return_result(self._context.invoke(comp, arg))


class BoundedExecutorFactory(tff.framework.ExecutorFactory):
  """One executor per cardinality, as TFF's factory, but only the newest few.

  The worker keeps a whole executor stack (with its compiled functions) per
  cardinality. With Poisson sampling the number of clients changes from
  round to round, and TFF's factory keeps 10 executors and drops older ones
  without disposing of them on the worker, which grew from 150 MB to 1 GB in
  50 rounds of about 20 clients.
  Executors evicted here are closed, which frees them on the worker.
  """

  def __init__(self, executor_stack_fn: Callable[[dict], executor_base.Executor],
               max_executors: int = 2):
    self._executor_stack_fn = executor_stack_fn
    self._max_executors = max_executors
    self._executors = collections.OrderedDict()

  def create_executor(self, cardinalities) -> executor_base.Executor:
    key = _cardinalities_key(cardinalities)
    if key in self._executors:
      self._executors.move_to_end(key)
      return self._executors[key]
    executor = self._executor_stack_fn(cardinalities)
    self._executors[key] = executor
    while len(self._executors) > self._max_executors:
      _, evicted = self._executors.popitem(last=False)
      evicted.close()
    return executor

  def clean_up_executor(self, cardinalities) -> None:
    executor = self._executors.pop(_cardinalities_key(cardinalities), None)
    if executor is not None:
      executor.close()


def _cardinalities_key(cardinalities) -> tuple:
  return tuple(sorted((str(k), v) for k, v in cardinalities.items()))


@contextlib.contextmanager
def remote_context(workers: Sequence[Worker], *,
                   worker_of: Optional[Callable[[Any], int]] = None,
                   connect_timeout_seconds: float = 10.0, retry_seconds: float = 60.0):
  """Runs computations on remote workers; one round's clients spread over them.

  `worker_of` maps a client's value (its key) to the index of the worker that
  holds its data; without it TFF cuts the client list into equal parts.

  Raises:
    WorkerUnreachableError: a worker does not answer within the timeout.
  """
  check_reachable(workers, connect_timeout_seconds)
  channels = [grpc.insecure_channel(w.address, _GRPC_OPTIONS) for w in workers]
  contexts = [_WorkerContext(w.address, c, retry_seconds) for w, c in zip(workers, channels)]
  if worker_of is None:
    tff.backends.native.set_mergeable_comp_execution_context(contexts)
  else:
    context_stack_impl.context_stack.set_default_context(routing.RoutedMergeableContext(
        contexts, mergeable_comp_compiler.compile_to_mergeable_comp_form, worker_of))
  try:
    yield
  finally:
    for channel in channels:
      channel.close()


atexit.register(stop_local_workers)
