"""Starts TFF's executor service (`worker_binary`) next to a site's client shards.

  python -m experiments.start_worker --port=8000 --data_dir=/data/prepared

The coordinator then trains with `run_dp_fedavg --workers=SITE@HOST:8000,...`.
Client datasets are read here, from DATA_DIR/clients/*.tfrecord; only client
ids come in and model updates go out. Plain gRPC: across sites, run it behind
an mTLS tunnel or a VPN (README, "Running across machines"). Stops on SIGTERM
or Ctrl-C.
"""

import os
import signal
import socket
import subprocess
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tff_stroke import worker_service

_PORT = flags.DEFINE_integer('port', 8000, 'Port the executor service listens on (all interfaces).')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', '.', 'Folder holding this worker\'s clients/*.tfrecord (a prepared folder, '
    'or the part of it with this site\'s clients).')
_MAX_CONCURRENT_CALLS = flags.DEFINE_integer(
    'max_concurrent_computation_calls', None,
    'Client computations run at once; default: the number of CPU cores; -1: no bound.')

STOP_GRACE_SECONDS = 10


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  data_dir = os.path.abspath(_DATA_DIR.value)
  clients_dir = os.path.join(data_dir, 'clients')
  if not os.path.isdir(clients_dir):
    raise app.UsageError(f'{clients_dir}: not a folder; --data_dir must hold the '
                         'clients/ folder written by data_pipelines.prepare')
  shards = sorted(f for f in os.listdir(clients_dir) if f.endswith('.tfrecord'))
  process = worker_service.start(
      _PORT.value, data_dir,
      max_concurrent_computation_calls=_MAX_CONCURRENT_CALLS.value)

  stop_requested = []

  def request_stop(signum, frame):
    del frame
    if not stop_requested:
      stop_requested.append((signal.Signals(signum).name, time.monotonic()))
    process.terminate()

  signal.signal(signal.SIGTERM, request_stop)
  signal.signal(signal.SIGINT, request_stop)
  try:
    worker_service.wait_until_listening(process, _PORT.value)
  except (RuntimeError, TimeoutError) as e:
    worker_service.stop(process)
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  if not stop_requested:
    print(f'worker listening on {socket.getfqdn()}:{_PORT.value} (pid {process.pid}); '
          f'{len(shards)} client shard(s) in {clients_dir}', flush=True)
  # The handlers only signal the worker: waiting on it there would deadlock.
  while process.poll() is None:
    try:
      process.wait(timeout=1)
    except subprocess.TimeoutExpired:
      if stop_requested and time.monotonic() - stop_requested[0][1] > STOP_GRACE_SECONDS:
        process.kill()
  if stop_requested:
    print(f'worker on port {_PORT.value} stopped ({stop_requested[0][0]})', flush=True)
    sys.exit(0)
  print(f'worker_binary exited with status {process.returncode}', file=sys.stderr)
  sys.exit(process.returncode or 1)


if __name__ == '__main__':
  app.run(main)
