"""Planning and calibration of the noise multiplier."""

import json
import os
import subprocess
import sys

import pytest

from tff_stroke import privacy_planning

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAN = privacy_planning.PlannedRun(num_clients=100, clients_per_round=10, rounds=30)


@pytest.mark.parametrize('accountant', ['pld', 'rdp'])
def test_calibrated_noise_meets_target_and_one_percent_less_does_not(accountant):
  z = privacy_planning.calibrate_noise_multiplier(
      PLAN, target_epsilon=4.0, delta=1e-5, accountant=accountant)
  assert privacy_planning.epsilon(PLAN, z, 1e-5, accountant) <= 4.0
  assert privacy_planning.epsilon(PLAN, 0.99 * z, 1e-5, accountant) > 4.0


def test_uniform_sampling_refuses_pld():
  plan = privacy_planning.PlannedRun(num_clients=100, clients_per_round=10, rounds=5,
                                     sampling='uniform')
  with pytest.raises(ValueError, match='RDP only'):
    privacy_planning.calibrate_noise_multiplier(plan, target_epsilon=4.0, delta=1e-5)
  z = privacy_planning.calibrate_noise_multiplier(plan, target_epsilon=4.0, delta=1e-5,
                                                  accountant='rdp')
  assert privacy_planning.epsilon(plan, z, 1e-5, 'rdp') <= 4.0


def _plan_cli(*args):
  result = subprocess.run([sys.executable, '-m', 'experiments.privacy_report', *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  return json.loads(result.stdout)


def test_cli_plans_and_calibrates_with_report_keys():
  planned = _plan_cli('--num_clients=100', '--clients_per_round=10', '--rounds=30',
                      '--noise_multiplier=1.0', '--delta=1e-5', '--clipped_count_stddev=1.0')
  assert planned['epsilon_pld'] == pytest.approx(privacy_planning.epsilon(PLAN, 1.0, 1e-5, 'pld'))
  for key in ('epsilon_rdp', 'delta', 'noise_multiplier', 'sampling_probability',
              'num_clients', 'rounds_completed', 'unit_of_privacy', 'per_round'):
    assert key in planned
  assert planned['warnings'] == []
  calibrated = _plan_cli('--num_clients=100', '--clients_per_round=10', '--rounds=30',
                         '--target_epsilon=4', '--delta=1e-5')
  assert calibrated['epsilon_pld'] <= 4.0
  assert any('clipped_count_stddev above' in w for w in calibrated['warnings'])
