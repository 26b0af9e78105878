"""The slice end to end: prepared tiny tree -> DP-FedAvg run -> report, SavedModel.

One run through the real command line (`python -m experiments.run_dp_fedavg`)
is shared by the tests of this module: a TFF compile takes most of a minute.
"""

import csv
import hashlib
import json
import os
import subprocess
import sys

import dp_accounting
from dp_accounting import pld
from dp_accounting import rdp
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import TINY_IMAGE_SIZE

pytestmark = pytest.mark.e2e

ROUNDS = 3
NOISE_MULTIPLIER = 0.6
CLIENTS_PER_ROUND = 2.0
DELTA = 1e-3
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(module, *args):
  return subprocess.run([sys.executable, '-m', module, *args], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=900)


@pytest.fixture(scope='module')
def run(tiny_prepared, tmp_path_factory):
  data_dir, manifest = tiny_prepared
  root = str(tmp_path_factory.mktemp('runs'))
  result = run_module(
      'experiments.run_dp_fedavg', f'--data_dir={data_dir}',
      f'--root_output_dir={root}', '--experiment_name=tiny',
      f'--total_rounds={ROUNDS}', f'--clients_per_round={CLIENTS_PER_ROUND}',
      f'--noise_multiplier={NOISE_MULTIPLIER}', '--clipped_count_stddev=0.5',
      f'--delta={DELTA}', '--base_filters=4', '--seed=3')
  assert result.returncode == 0, result.stdout + result.stderr
  return os.path.join(root, 'tiny'), manifest, result.stdout, data_dir


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def test_outputs_and_progress(run):
  run_dir, _, stdout, _ = run
  for name in ('config.json', 'metrics.csv', 'evaluation.json',
               'privacy/report.json', 'privacy/ledger.json', 'saved_model/saved_model.pb'):
    assert os.path.exists(os.path.join(run_dir, name)), name
  for round_num in range(1, ROUNDS + 1):
    assert f'round {round_num}/{ROUNDS}:' in stdout
  assert 'Privacy report:' in stdout and 'SavedModel:' in stdout
  config = _read_json(os.path.join(run_dir, 'config.json'))
  assert config['noise_multiplier'] == NOISE_MULTIPLIER
  assert config['total_rounds'] == ROUNDS
  assert config['seed'] == 3 and config['base_filters'] == 4
  assert config['num_clients'] == 3
  assert config['sampling_probability'] == pytest.approx(CLIENTS_PER_ROUND / 3)


def test_metrics_and_ledger_agree(run):
  run_dir, _, _, _ = run
  with open(os.path.join(run_dir, 'metrics.csv')) as f:
    rows = list(csv.DictReader(f))
  ledger = _read_json(os.path.join(run_dir, 'privacy', 'ledger.json'))['entries']
  assert [int(r['round']) for r in rows] == [e['round'] for e in ledger] == [1, 2, 3]
  assert [int(r['clients_sampled']) for r in rows] == [e['clients_sampled'] for e in ledger]
  assert all(np.isfinite(float(r['loss'])) for r in rows)
  assert float(rows[0]['clip_norm']) == pytest.approx(0.1)
  assert float(rows[1]['clip_norm']) == pytest.approx(float(rows[0]['next_clip_norm']))
  for entry in ledger:
    assert entry['effective_noise_multiplier'] == pytest.approx(NOISE_MULTIPLIER, rel=1e-6)
    assert entry['round_event']['event_type'] == 'PoissonSampledDpEvent'
    assert entry['aggregator_event']['event_type'] == 'ComposedDpEvent'


def test_report_matches_independent_accounting(run):
  run_dir, _, _, _ = run
  report = _read_json(os.path.join(run_dir, 'privacy', 'report.json'))
  q = CLIENTS_PER_ROUND / 3
  event = dp_accounting.SelfComposedDpEvent(
      dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(NOISE_MULTIPLIER)),
      ROUNDS)
  rdp_accountant = rdp.RdpAccountant()
  rdp_accountant.compose(event)
  pld_accountant = pld.PLDAccountant()
  pld_accountant.compose(event)
  # The ledger's noise multipliers come from float32 aggregator state.
  assert report['epsilon_rdp'] == pytest.approx(rdp_accountant.get_epsilon(DELTA), rel=1e-4)
  assert report['epsilon_pld'] == pytest.approx(pld_accountant.get_epsilon(DELTA), rel=1e-4)
  assert report['epsilon_pld'] < report['epsilon_rdp']
  assert report['delta'] == DELTA
  assert report['noise_multiplier'] == NOISE_MULTIPLIER
  assert report['sampling_probability'] == pytest.approx(q)
  assert report['num_clients'] == 3
  assert report['rounds_completed'] == ROUNDS
  assert report['unit_of_privacy'] == 'site'
  assert [r['round'] for r in report['per_round']] == [1, 2, 3]
  assert report['per_round'][-1]['epsilon_pld'] == report['epsilon_pld']
  with open(os.path.join(run_dir, 'privacy', 'ledger.json'), 'rb') as f:
    assert report['ledger_sha256'] == hashlib.sha256(f.read()).hexdigest()
  assert report['warnings'] == []  # delta 1e-3 is below 1/num_clients = 1/3


def test_saved_model_serves_with_stock_tensorflow(run):
  run_dir, _, _, _ = run
  export_dir = os.path.join(run_dir, 'saved_model')
  loaded = tf.saved_model.load(export_dir)
  serve = loaded.signatures['serving_default']
  output = serve(image=tf.zeros([2, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 1]))
  probabilities = output['lesion_probability'].numpy()
  assert probabilities.shape == (2, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 1)
  assert np.all((probabilities >= 0) & (probabilities <= 1))
  with open(os.path.join(export_dir, 'assets', 'privacy_report.json'), 'rb') as f:
    asset = f.read()
  with open(os.path.join(run_dir, 'privacy', 'report.json'), 'rb') as f:
    assert asset == f.read()


def test_evaluation_is_per_held_out_subject(run):
  run_dir, manifest, _, _ = run
  result = _read_json(os.path.join(run_dir, 'evaluation.json'))
  assert sorted(result['per_subject']) == sorted(manifest['holdout']['subjects'])
  assert 0.0 <= result['mean_dice'] <= 1.0


def test_existing_run_folder_is_not_overwritten(run):
  run_dir, _, _, data_dir = run
  result = run_module(
      'experiments.run_dp_fedavg', f'--data_dir={data_dir}',
      f'--root_output_dir={os.path.dirname(run_dir)}', '--experiment_name=tiny')
  assert result.returncode != 0
  assert 'not empty' in result.stderr


def test_stray_argument_is_an_error(run):
  run_dir, _, _, data_dir = run
  result = run_module('experiments.run_dp_fedavg', f'--data_dir={data_dir}',
                      '--experiment_name=other', f'--root_output_dir={run_dir}', 'extra')
  assert result.returncode != 0
  assert "Unexpected arguments: ['extra']" in result.stderr
