"""Rounds on two TFF workers on loopback, each holding only its sites' shards.

Workers are started with `experiments.start_worker`, as a user would; the
coordinator is `experiments.run_dp_fedavg --workers=...`.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import portpicker
import psutil
import pytest

from tests.conftest import REPO_ROOT
from tests.conftest import ZERO_NOISE_FLAGS
from tests.conftest import run_command
from tests.conftest import saved_model_weights
from tests.conftest import training_command

pytestmark = pytest.mark.e2e

# Worker A holds sites R001 and R002, worker B site R003.
SITES = {'a': ('R001', 'R002'), 'b': ('R003',)}


class Worker:
  """`python -m experiments.start_worker` in its own process group."""

  def __init__(self, data_dir, port):
    self.data_dir, self.port = data_dir, port
    self.process = subprocess.Popen(
        [sys.executable, '-m', 'experiments.start_worker', f'--port={port}',
         f'--data_dir={data_dir}'],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True, env={**os.environ, 'PYTHONUNBUFFERED': '1'})
    self.banner = self.process.stdout.readline()
    assert f':{port} ' in self.banner and 'listening' in self.banner, self.banner

  def kill(self):
    """SIGKILL to the wrapper and its worker_binary, as a crashed machine would."""
    os.killpg(self.process.pid, signal.SIGKILL)
    self.process.wait(timeout=30)

  def terminate(self):
    """SIGTERM to the wrapper only; returns (exit status, what it printed)."""
    binary = psutil.Process(self.process.pid).children()
    self.process.send_signal(signal.SIGTERM)
    output, _ = self.process.communicate(timeout=30)
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE
                   for child in binary)
    return self.process.returncode, output


def _site_folders(data_dir, root, missing=()):
  """One data folder per worker with only its sites' client shards."""
  folders = {}
  for name, sites in SITES.items():
    clients = os.path.join(root, name, 'clients')
    os.makedirs(clients)
    for site in sites:
      if site not in missing:
        shutil.copy(os.path.join(data_dir, 'clients', f'{site}.tfrecord'), clients)
    folders[name] = os.path.dirname(clients)
  return folders


def _workers_flag(workers):
  return '--workers=' + ','.join(
      f'{"+".join(SITES[name])}@localhost:{worker.port}' for name, worker in workers.items())


def _ledger(run_dir):
  with open(os.path.join(run_dir, 'privacy', 'ledger.json')) as f:
    return json.load(f)


def test_unreachable_worker_is_named_at_start_up(tiny_prepared, tmp_path):
  port = portpicker.pick_unused_port()
  result = subprocess.run(
      training_command(tiny_prepared[0], str(tmp_path), 'run', *ZERO_NOISE_FLAGS,
                       f'--workers=localhost:{port}', '--worker_connect_timeout=1'),
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 1
  assert f'localhost:{port} did not answer' in result.stderr
  assert not os.path.exists(os.path.join(tmp_path, 'run'))


def test_zero_noise_run_on_two_workers_matches_the_local_run(tiny_prepared, zero_noise_run,
                                                              tmp_path):
  folders = _site_folders(tiny_prepared[0], str(tmp_path / 'sites'))
  workers = {name: Worker(folder, portpicker.pick_unused_port())
             for name, folder in folders.items()}
  try:
    run_command(training_command(tiny_prepared[0], str(tmp_path), 'remote',
                                 *ZERO_NOISE_FLAGS, _workers_flag(workers)))
  finally:
    stops = {name: worker.terminate() for name, worker in workers.items()}
  for status, output in stops.values():
    assert status == 0 and 'stopped (SIGTERM)' in output

  remote_dir = str(tmp_path / 'remote')
  for remote, local in zip(saved_model_weights(remote_dir),
                           saved_model_weights(zero_noise_run)):
    np.testing.assert_allclose(remote, local, rtol=1e-4, atol=1e-6)
  assert ([e['clients_sampled'] for e in _ledger(remote_dir)['entries']]
          == [e['clients_sampled'] for e in _ledger(zero_noise_run)['entries']])


def test_dp_run_on_two_workers_survives_a_lost_worker_and_a_missing_shard(
    tiny_prepared, tmp_path):
  """Worker B dies after round 2; the run stops, B restarts, the rerun resumes.

  R002's shard is missing on worker A: it is left out of every round.
  """
  folders = _site_folders(tiny_prepared[0], str(tmp_path / 'sites'), missing=('R002',))
  workers = {name: Worker(folder, portpicker.pick_unused_port())
             for name, folder in folders.items()}
  rounds = 4
  command = training_command(
      tiny_prepared[0], str(tmp_path), 'dp', f'--total_rounds={rounds}', '--sampling=all',
      '--clients_per_round=3', '--noise_multiplier=0.5', '--clipped_count_stddev=0.5',
      '--delta=1e-3', '--base_filters=4', '--seed=2', '--worker_retry_seconds=2',
      _workers_flag(workers))
  run_dir = str(tmp_path / 'dp')
  try:
    with open(tmp_path / 'stderr.txt', 'w+') as stderr_file:
      coordinator = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                     stderr=stderr_file, text=True,
                                     env={**os.environ, 'PYTHONUNBUFFERED': '1'})
      for line in coordinator.stdout:
        if line.startswith('round 2/'):
          workers['b'].kill()
          break
      stdout, _ = coordinator.communicate(timeout=300)
      stderr_file.seek(0)
      stderr = stderr_file.read()
    assert coordinator.returncode == 3, stdout + stderr
    assert f'worker localhost:{workers["b"].port} stopped answering' in stderr
    assert [e['round'] for e in _ledger(run_dir)['entries']] == [1, 2]
    assert not os.path.exists(os.path.join(run_dir, 'summary.json'))

    workers['b'] = Worker(folders['b'], workers['b'].port)
    stdout = run_command(command)
  finally:
    for worker in workers.values():
      worker.terminate()

  assert 'resuming' in stdout and 'after round 2' in stdout
  assert 'round 3: client R002 left out: shard clients/R002.tfrecord is missing' in stdout
  ledger = _ledger(run_dir)
  assert [e['round'] for e in ledger['entries']] == list(range(1, rounds + 1))
  assert ledger['discarded'] == []
  for entry in ledger['entries']:
    assert entry['clients_sampled'] == 3
    assert list(entry['clients_left_out']) == ['R002']
  with open(os.path.join(run_dir, 'privacy', 'report.json')) as f:
    assert json.load(f)['clients_left_out'] == rounds
  verified = subprocess.run(
      [sys.executable, '-m', 'experiments.privacy_report', f'--run_dir={run_dir}', '--verify'],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
  assert verified.returncode == 0, verified.stdout + verified.stderr
