"""The slice end to end: prepared tiny tree -> DP-FedAvg run -> report, SavedModel.

One run through the real command line (`python -m experiments.run_dp_fedavg`)
is shared by the tests of this module: a TFF compile takes most of a minute.
"""

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import dp_accounting
from dp_accounting import pld
from dp_accounting import rdp
import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import nifti
from data_pipelines import preprocessing
from tff_stroke import execution
from tff_stroke import experiment
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
      f'--delta={DELTA}', '--base_filters=4', '--seed=3', '--eval_every=2')
  assert result.returncode == 0, result.stdout + result.stderr
  return os.path.join(root, 'tiny'), manifest, result.stdout, data_dir


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def test_outputs_and_progress(run):
  run_dir, _, stdout, _ = run
  for name in ('config.json', 'metrics.csv', 'evaluation.json', 'preprocessing.json',
               'training_data.json', 'summary.md', 'summary.json',
               'privacy/report.json', 'privacy/report.md', 'privacy/epsilon.png',
               'privacy/ledger.json', 'saved_model/saved_model.pb',
               'checkpoints/round_1', 'checkpoints/round_3'):
    assert os.path.exists(os.path.join(run_dir, name)), name
  for round_num in range(1, ROUNDS + 1):
    assert re.search(rf'round {round_num}/{ROUNDS}: \d+ clients, loss [\d.]+, clip [\d.]+, '
                     r'epsilon \(RDP\) [\d.]+', stdout)
  assert re.search(rf'round 2/{ROUNDS}: .*held-out Dice [\d.]+', stdout)
  assert 'Privacy report:' in stdout and 'SavedModel:' in stdout
  assert any(name.startswith('events.out.tfevents')
             for name in os.listdir(os.path.join(run_dir, 'tensorboard')))
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
  # Held-out evaluation every 2 rounds; the epsilon so far is the report's curve.
  assert [r['holdout_dice'] != '' for r in rows] == [False, True, False]
  report = _read_json(os.path.join(run_dir, 'privacy', 'report.json'))
  for row, point in zip(rows, report['per_round']):
    assert float(row['epsilon_rdp']) == pytest.approx(point['epsilon_rdp'], rel=1e-9)
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


def test_evaluation_is_per_held_out_subject_and_site(run):
  run_dir, manifest, _, _ = run
  result = _read_json(os.path.join(run_dir, 'evaluation.json'))['held_out_subjects']
  assert sorted(result['per_subject']) == sorted(manifest['holdout']['subjects'])
  assert sorted(result['per_site']) == ['R001', 'R002', 'R003']
  assert result['overall']['num_subjects'] == 3
  for name in ('dice', 'iou', 'lesion_f1'):
    assert 0.0 <= result['overall'][name] <= 1.0
  with open(os.path.join(run_dir, 'summary.md')) as f:
    summary = f.read()
  assert '| R002 | 1 |' in summary and 'lesion_f1' in summary


def test_existing_run_folder_is_not_overwritten(run):
  run_dir, _, _, data_dir = run
  result = run_module(
      'experiments.run_dp_fedavg', f'--data_dir={data_dir}', '--clipped_count_stddev=0.5',
      f'--root_output_dir={os.path.dirname(run_dir)}', '--experiment_name=tiny')
  assert result.returncode != 0
  assert 'holds a run with other settings' in result.stderr
  assert 'noise_multiplier: 0.6 there, 0.5 now' in result.stderr
  result = run_module(
      'experiments.run_dp_fedavg', f'--data_dir={data_dir}', '--noresume',
      '--clipped_count_stddev=0.5',
      f'--root_output_dir={os.path.dirname(run_dir)}', '--experiment_name=tiny')
  assert result.returncode != 0
  assert 'not empty' in result.stderr


def test_report_markdown_states_the_guarantee(run):
  run_dir, _, _, _ = run
  with open(os.path.join(run_dir, 'privacy', 'report.md')) as f:
    text = f.read()
  report = _read_json(os.path.join(run_dir, 'privacy', 'report.json'))
  assert (f'This model is ({report["epsilon_pld"]:.4g}, {DELTA:g})-differentially private '
          'with respect to adding or removing all data of one site (hospital)') in text
  assert '| 3 |' in text and 'trusted' in text


def _verify(run_dir):
  return run_module('experiments.privacy_report', f'--run_dir={run_dir}', '--verify')


def test_verify_accepts_the_run(run):
  run_dir, _, _, _ = run
  result = _verify(run_dir)
  assert result.returncode == 0, result.stderr
  report = _read_json(os.path.join(run_dir, 'privacy', 'report.json'))
  match = re.fullmatch(r'verified: epsilon_pld=(\S+), epsilon_rdp=(\S+), '
                       r'delta=(\S+), rounds=(\d+)', result.stdout.strip())
  assert match, result.stdout
  assert float(match[1]) == pytest.approx(report['epsilon_pld'], rel=1e-9)
  assert float(match[2]) == pytest.approx(report['epsilon_rdp'], rel=1e-9)
  assert (float(match[3]), int(match[4])) == (DELTA, ROUNDS)


def _tampered_copy(run_dir, tmp_path, edit):
  copy = str(tmp_path / 'copy')
  shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns('saved_model'))
  edit(copy)
  return copy


def _edit_json(path, change):
  value = _read_json(path)
  change(value)
  with open(path, 'w') as f:
    json.dump(value, f, indent=1)


def _edit_ledger_noise(copy):
  path = os.path.join(copy, 'privacy', 'ledger.json')
  _edit_json(path, lambda v: v['entries'][1]['aggregator_event']['events'][0].update(
      noise_multiplier=5.0))


def _drop_ledger_round(copy):
  _edit_json(os.path.join(copy, 'privacy', 'ledger.json'),
             lambda v: v['entries'].pop())


def _change_config_noise(copy):
  _edit_json(os.path.join(copy, 'config.json'), lambda v: v.update(noise_multiplier=1.2))


@pytest.mark.parametrize('edit,expected', [
    (_edit_ledger_noise, ['does not match the sha256', 'round 2: aggregator noise multiplier']),
    (_drop_ledger_round, ['does not match the sha256', 'the ledger holds 2',
                          'metrics.csv has rounds [1, 2, 3]']),
    (_change_config_noise, ['noise_multiplier: config.json has 1.2']),
])
def test_verify_names_each_mismatch(run, tmp_path, edit, expected):
  result = _verify(_tampered_copy(run[0], tmp_path, edit))
  assert result.returncode == 1
  for message in expected:
    assert message in result.stderr, result.stderr


def test_stray_argument_is_an_error(run):
  run_dir, _, _, data_dir = run
  result = run_module('experiments.run_dp_fedavg', f'--data_dir={data_dir}',
                      '--experiment_name=other', f'--root_output_dir={run_dir}', 'extra')
  assert result.returncode != 0
  assert "Unexpected arguments: ['extra']" in result.stderr


@pytest.mark.parametrize('flags,message', [
    (['--aggregator=dp_ftrl'], "'dp_ftrl' needs sampling 'shuffled'"),
    (['--noise_multiplier=3.0'], 'needs clipped_count_stddev > 1.5'),
    (['--unet_depth=6'], 'unet_depth 6 needs an image size divisible by 64'),
])
def test_impossible_settings_are_refused_before_training(run, flags, message):
  run_dir, _, _, data_dir = run
  result = run_module('experiments.run_dp_fedavg', f'--data_dir={data_dir}',
                      '--experiment_name=refused', f'--root_output_dir={run_dir}', *flags)
  assert result.returncode != 0
  assert message in result.stderr
  assert 'round 1/' not in result.stdout and not os.path.exists(
      os.path.join(run_dir, 'refused'))


def test_export_matches_the_training_time_keras_model(run):
  run_dir, manifest, _, _ = run
  with execution.local_cpp_context():
    model, round_num = experiment.load_checkpoint_model(run_dir)
  assert round_num == ROUNDS
  loaded = tf.saved_model.load(os.path.join(run_dir, 'saved_model'))
  slices = tf.random.stateless_normal([3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 1], seed=[1, 2])
  served = loaded.signatures['serving_default'](image=slices)['lesion_probability']
  np.testing.assert_allclose(served.numpy(), model(slices).numpy(), atol=1e-5)

  # segment_volume repeats the training pipeline inside the graph.
  image = nifti.load_volume(_subject_image(manifest)).data
  normalized, _ = preprocessing.normalize_volume(image)
  fitted = preprocessing.crop_or_pad_in_plane(normalized, TINY_IMAGE_SIZE)
  predicted = model(np.transpose(fitted, (2, 0, 1))[..., None]).numpy()[..., 0]
  restored = tf.image.resize_with_crop_or_pad(
      predicted[..., None], image.shape[0], image.shape[1]).numpy()[..., 0]
  expected = np.transpose(restored, (1, 2, 0))
  segmented = loaded.signatures['segment_volume'](volume=tf.constant(image))
  assert segmented['lesion_probability'].shape == image.shape
  np.testing.assert_allclose(segmented['lesion_probability'].numpy(), expected, atol=1e-4)


def _subject_image(manifest):
  subject_id = manifest['holdout']['subjects'][0]
  for root, _, files in os.walk(manifest['source']['bids_dir']):
    for name in files:
      if name.startswith(subject_id) and name.endswith('_T1w.nii.gz'):
        return os.path.join(root, name)
  raise AssertionError(subject_id)


def test_assets_carry_report_preprocessing_and_model_card(run):
  run_dir, _, _, _ = run
  assets = os.path.join(run_dir, 'saved_model', 'assets')
  preprocessing_asset = _read_json(os.path.join(assets, 'preprocessing.json'))
  assert preprocessing_asset['spacing_mm'] == 6.0
  assert preprocessing_asset['image_size'] == TINY_IMAGE_SIZE
  assert preprocessing_asset['channels'] == ['T1w']
  report = _read_json(os.path.join(run_dir, 'privacy', 'report.json'))
  with open(os.path.join(assets, 'model_card.md')) as f:
    card = f.read()
  assert 'Not for clinical decisions' in card
  assert f'({report["epsilon_pld"]:.4f}, {DELTA:g})-differential privacy' in card
  assert 'all data of one site (hospital)' in card
  assert '| R001 | 1 | 2 |' in card  # site, clients, training subjects
  assert f'global weights after round {ROUNDS} of {ROUNDS}' in card


def test_export_model_writes_an_earlier_round(run, tmp_path):
  run_dir, _, _, _ = run
  output = str(tmp_path / 'round2')
  result = run_module('experiments.export_model', f'--run_dir={run_dir}',
                      f'--output_dir={output}', '--round=2')
  assert result.returncode == 0, result.stderr
  assert 'SavedModel of round 2' in result.stdout
  with open(os.path.join(output, 'assets', 'model_card.md')) as f:
    assert f'global weights after round 2 of {ROUNDS}' in f.read()
  with open(os.path.join(output, 'assets', 'privacy_report.json'), 'rb') as f:
    asset_sha256 = hashlib.sha256(f.read()).hexdigest()
  with open(os.path.join(run_dir, 'privacy', 'report.json'), 'rb') as f:
    assert asset_sha256 == hashlib.sha256(f.read()).hexdigest()
  missing = run_module('experiments.export_model', f'--run_dir={run_dir}',
                       f'--output_dir={output}', '--round=7')
  assert missing.returncode != 0
  assert 'no checkpoint of round 7; checkpoints: [1, 2, 3]' in missing.stderr
