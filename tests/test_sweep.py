"""Sweep files, run folders and the privacy-utility table.

Runs are stood in for by finished run folders (config.json + summary.json,
as a run writes them); the runs themselves are tested in test_end_to_end.
"""

import csv
import json
import os
import subprocess
import sys

import pytest

from tff_stroke import sweeps

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = {
    'name': 'mini',
    'base': {'data_dir': 'prepared', 'total_rounds': 3, 'clients_per_round': 2.0,
             'delta': 1e-3},
    'grid': {'noise_multiplier': [0.5, 1.0], 'aggregator': ['dp_fixed']},
    'runs': [{'aggregator': 'none', 'noise_multiplier': 0}],
    'centralized': {'epochs': 2},
}


def _write(tmp_path, spec):
  path = tmp_path / 'sweep.json'
  path.write_text(json.dumps(spec))
  return str(path)


def _finish(sweep_dir, run, dice, epsilon):
  """Writes the run folder a finished run leaves (its config and summary)."""
  run_dir = os.path.join(sweep_dir, run.name)
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, 'config.json'), 'w') as f:
    json.dump(run.settings, f)
  with open(os.path.join(run_dir, 'summary.json'), 'w') as f:
    json.dump({'holdout_dice': dice, 'holdout_lesion_f1': dice / 2, 'epsilon_pld': epsilon,
               'epsilon_rdp': epsilon and epsilon * 1.1, 'rounds_completed': 3,
               'delta': 1e-3}, f)


def test_grid_runs_and_references_with_names_and_commands(tmp_path):
  name, runs = sweeps.load_sweep(_write(tmp_path, SWEEP))
  assert name == 'mini'
  assert [r.name for r in runs] == [
      'aggregator-dp_fixed_noise_multiplier-0.5', 'aggregator-dp_fixed_noise_multiplier-1.0',
      'aggregator-none_noise_multiplier-0', 'centralized']
  assert runs[1].settings == {**SWEEP['base'], 'noise_multiplier': 1.0,
                              'aggregator': 'dp_fixed'}
  command = sweeps.command(runs[1], 'out/mini')
  assert command[:2] == ['-m', 'experiments.run_dp_fedavg']
  assert '--experiment_name=aggregator-dp_fixed_noise_multiplier-1.0' in command
  assert '--root_output_dir=out/mini' in command and '--noise_multiplier=1.0' in command
  assert sweeps.command(runs[3], 'out/mini')[:2] == ['-m', 'experiments.run_centralized']
  assert '--data_dir=prepared' in sweeps.command(runs[3], 'out/mini')


@pytest.mark.parametrize('change,message', [
    ({'grid': {'noise': [1.0]}}, r"grid: unknown setting\(s\) \['noise'\]"),
    ({'grid': {'noise_multiplier': 1.0}}, 'must be a non-empty list'),
    ({'base': {'experiment_name': 'x'}}, 'base: unknown setting'),
    ({'centralized': {'rounds': 3}}, 'centralized: unknown setting'),
    ({'runs': [{'noise_multiplier': 0.5, 'aggregator': 'dp_fixed'}]}, 'same settings'),
    ({'extra': 1}, r"unknown section\(s\) \['extra'\]"),
    ({'grid': {}, 'runs': []}, 'names no run'),
])
def test_bad_sweep_files_are_refused(tmp_path, change, message):
  with pytest.raises(ValueError, match=message):
    sweeps.load_sweep(_write(tmp_path, {**SWEEP, **change}))


def test_rerun_skips_finished_runs_and_tabulates(tmp_path):
  path = _write(tmp_path, SWEEP)
  _, runs = sweeps.load_sweep(path)
  sweep_dir = str(tmp_path / 'out' / 'mini')
  for run, dice, epsilon in zip(runs, (0.2, 0.3, 0.5, 0.6), (9.0, 4.0, None, None)):
    _finish(sweep_dir, run, dice, epsilon)
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.sweep', f'--config={path}',
       f'--root_output_dir={tmp_path / "out"}'],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stdout + result.stderr
  assert result.stdout.count('finished earlier; skipped') == 4
  assert 'running' not in result.stdout
  with open(os.path.join(sweep_dir, 'privacy_utility.csv')) as f:
    rows = list(csv.DictReader(f))
  assert [(r['run'], r['epsilon_pld'], r['holdout_dice']) for r in rows] == [
      ('aggregator-dp_fixed_noise_multiplier-0.5', '9.0', '0.2'),
      ('aggregator-dp_fixed_noise_multiplier-1.0', '4.0', '0.3'),
      ('aggregator-none_noise_multiplier-0', '', '0.5')]
  with open(os.path.join(sweep_dir, 'privacy_utility.md')) as f:
    table = f.read()
  assert '| aggregator-none_noise_multiplier-0 | none | 0 |' in table
  assert 'not private' in table and 'Centralised reference' in table and '0.600' in table
  assert os.path.getsize(os.path.join(sweep_dir, 'privacy_utility.png')) > 1000


def test_unfinished_run_is_run_again(tmp_path):
  """Only the run without summary.json is launched; it fails here (no data) and
  the sweep says so and exits non-zero, keeping the other rows."""
  path = _write(tmp_path, SWEEP)
  _, runs = sweeps.load_sweep(path)
  sweep_dir = str(tmp_path / 'out' / 'mini')
  for run in runs[1:]:
    _finish(sweep_dir, run, 0.3, 4.0)
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.sweep', f'--config={path}',
       f'--root_output_dir={tmp_path / "out"}'],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 1
  assert result.stdout.count('finished earlier; skipped') == 3
  assert f'[1/4] {runs[0].name}: running' in result.stdout
  assert '1 run(s) failed' in result.stdout
  with open(os.path.join(sweep_dir, runs[0].name + '.log')) as f:
    assert 'manifest.json: not found' in f.read()
