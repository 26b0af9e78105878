"""A run killed mid-way and rerun ends as if it had never stopped.

The run is the deterministic zero-noise run of conftest, so the killed and
resumed run must reproduce the uninterrupted one.
"""

import csv
import json
import os
import signal
import subprocess

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.conftest import ZERO_NOISE_FLAGS
from tests.conftest import ZERO_NOISE_ROUNDS
from tests.conftest import run_command
from tests.conftest import saved_model_weights
from tests.conftest import training_command

pytestmark = pytest.mark.e2e


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


def metrics_without_times(run_dir):
  with open(os.path.join(run_dir, 'metrics.csv')) as f:
    return [{k: v for k, v in row.items() if k != 'seconds'} for row in csv.DictReader(f)]


def test_killed_run_resumes_to_the_same_weights_and_metrics(tiny_prepared, zero_noise_run,
                                                             tmp_path):
  root = str(tmp_path)
  resumed_command = training_command(tiny_prepared[0], root, 'resumed', *ZERO_NOISE_FLAGS)
  _kill_after_round(resumed_command, 2)
  resumed_dir = os.path.join(root, 'resumed')
  assert not os.path.exists(os.path.join(resumed_dir, 'summary.json'))

  stdout = run_command(resumed_command)
  assert 'resuming' in stdout
  assert metrics_without_times(resumed_dir) == metrics_without_times(zero_noise_run)
  for resumed, uninterrupted in zip(saved_model_weights(resumed_dir),
                                    saved_model_weights(zero_noise_run)):
    np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-5, atol=1e-6)
  with open(os.path.join(resumed_dir, 'privacy', 'ledger.json')) as f:
    ledger = json.load(f)
  assert [e['round'] for e in ledger['entries']] == list(range(1, ZERO_NOISE_ROUNDS + 1))
  # A round that ran after the last checkpoint is kept as discarded: it counts.
  assert [e['round'] for e in ledger['discarded']] in ([], [2])

  again = run_command(resumed_command)
  assert 'already finished' in again
