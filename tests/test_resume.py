"""A run killed mid-way and rerun ends as if it had never stopped.

Noise multiplier 0 and clipped-count stddev 0 make a run deterministic given
its seed, so the killed-and-resumed run must reproduce the uninterrupted one.
"""

import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.e2e

ROUNDS = 4
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _command(data_dir, root, name):
  return [sys.executable, '-m', 'experiments.run_dp_fedavg', f'--data_dir={data_dir}',
          f'--root_output_dir={root}', f'--experiment_name={name}',
          f'--total_rounds={ROUNDS}', '--clients_per_round=2', '--noise_multiplier=0',
          '--clipped_count_stddev=0', '--delta=1e-3', '--base_filters=4', '--seed=5']


def _run(command):
  result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=900)
  assert result.returncode == 0, result.stdout + result.stderr
  return result.stdout


def _kill_after_round(command, round_num):
  """Starts the run and SIGKILLs it (and its TFF worker) once `round_num` is logged."""
  process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                             env={**os.environ, 'PYTHONUNBUFFERED': '1'})
  for line in process.stdout:
    if line.startswith(f'round {round_num}/'):
      os.killpg(process.pid, signal.SIGKILL)
      break
  process.wait(timeout=60)
  assert process.returncode == -signal.SIGKILL


def _metrics(run_dir):
  with open(os.path.join(run_dir, 'metrics.csv')) as f:
    return [{k: v for k, v in row.items() if k != 'seconds'} for row in csv.DictReader(f)]


def _weights(run_dir):
  loaded = tf.saved_model.load(os.path.join(run_dir, 'saved_model'))
  return [v.numpy() for v in sorted(loaded.model.variables, key=lambda v: v.name)]


def test_killed_run_resumes_to_the_same_weights_and_metrics(tiny_prepared, tmp_path):
  data_dir, _ = tiny_prepared
  root = str(tmp_path)
  _run(_command(data_dir, root, 'uninterrupted'))
  resumed_command = _command(data_dir, root, 'resumed')
  _kill_after_round(resumed_command, 2)
  resumed_dir = os.path.join(root, 'resumed')
  assert not os.path.exists(os.path.join(resumed_dir, 'summary.json'))

  stdout = _run(resumed_command)
  assert 'resuming' in stdout
  assert _metrics(resumed_dir) == _metrics(os.path.join(root, 'uninterrupted'))
  for resumed, uninterrupted in zip(_weights(resumed_dir),
                                    _weights(os.path.join(root, 'uninterrupted'))):
    np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-5, atol=1e-6)
  with open(os.path.join(resumed_dir, 'privacy', 'ledger.json')) as f:
    ledger = json.load(f)
  assert [e['round'] for e in ledger['entries']] == list(range(1, ROUNDS + 1))
  # A round that ran after the last checkpoint is kept as discarded: it counts.
  assert [e['round'] for e in ledger['discarded']] in ([], [2])

  again = _run(resumed_command)
  assert 'already finished' in again
