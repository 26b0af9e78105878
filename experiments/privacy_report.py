"""Epsilon without training, calibration of the noise, and verification of a run.

Plan:      python -m experiments.privacy_report --num_clients=N --clients_per_round=M \
               --noise_multiplier=Z --rounds=T --delta=D [--sampling=poisson]
Calibrate: the same with --target_epsilon=E instead of --noise_multiplier
           (--accountant=pld|rdp).
Verify:    python -m experiments.privacy_report --run_dir=RUNS/NAME --verify

Plan and calibrate print a report JSON with the keys of a run's report.json.
Verify exits 0 with one "verified: ..." line, or 1 naming each mismatch.
"""

import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tff_stroke import accounting
from tff_stroke import aggregation
from tff_stroke import privacy_planning
from tff_stroke import privacy_report
from tff_stroke import sampling
from tff_stroke import verification

# Verification.
_RUN_DIR = flags.DEFINE_string('run_dir', None, 'A run folder to verify.')
_VERIFY = flags.DEFINE_bool('verify', False, 'Replay and check the run at --run_dir.')

# Planning and calibration.
_NUM_CLIENTS = flags.DEFINE_integer('num_clients', None, 'Clients N.')
_CLIENTS_PER_ROUND = flags.DEFINE_float('clients_per_round', None, 'Expected clients per round m.')
_ROUNDS = flags.DEFINE_integer('rounds', None, 'Rounds T.')
_NOISE_MULTIPLIER = flags.DEFINE_float('noise_multiplier', None, 'Effective noise multiplier z.')
_TARGET_EPSILON = flags.DEFINE_float('target_epsilon', None,
                                     'Calibrate the smallest z meeting this epsilon.')
_ACCOUNTANT = flags.DEFINE_enum('accountant', 'pld', accounting.ACCOUNTANTS,
                                'Accountant used to calibrate.')
_DELTA = flags.DEFINE_float('delta', 1e-5, 'Delta.')
_AT_EPSILON = flags.DEFINE_float('at_epsilon', None, 'Also report delta at this epsilon.')
_SAMPLING = flags.DEFINE_enum('sampling', 'poisson', sampling.SAMPLING_MODES, 'Client sampling.')
_CLIPPED_COUNT_STDDEV = flags.DEFINE_float(
    'clipped_count_stddev', None, 'Adaptive clipping count noise; default 0.05 * m.')
_UNIT_OF_PRIVACY = flags.DEFINE_enum('unit_of_privacy', 'site', ['site', 'subject'],
                                     'What one client is.')


def verify(run_dir: str) -> int:
  problems, recomputed = verification.verify_run(run_dir)
  if problems:
    for problem in problems:
      print(f'MISMATCH: {problem}', file=sys.stderr)
    print(f'not verified: {len(problems)} mismatch(es) in {run_dir}', file=sys.stderr)
    return 1
  print(f'verified: epsilon_pld={recomputed["epsilon_pld"]}, '
        f'epsilon_rdp={recomputed["epsilon_rdp"]}, delta={recomputed["delta"]}, '
        f'rounds={recomputed["rounds"]}')
  return 0


def plan() -> dict:
  for flag in (_NUM_CLIENTS, _CLIENTS_PER_ROUND, _ROUNDS):
    if flag.value is None:
      raise app.UsageError(f'--{flag.name} is required to plan.')
  if (_NOISE_MULTIPLIER.value is None) == (_TARGET_EPSILON.value is None):
    raise app.UsageError('Give exactly one of --noise_multiplier and --target_epsilon.')
  planned = privacy_planning.PlannedRun(
      num_clients=_NUM_CLIENTS.value, clients_per_round=_CLIENTS_PER_ROUND.value,
      rounds=_ROUNDS.value, sampling=_SAMPLING.value)
  z = _NOISE_MULTIPLIER.value
  if z is None:
    z = privacy_planning.calibrate_noise_multiplier(
        planned, target_epsilon=_TARGET_EPSILON.value, delta=_DELTA.value,
        accountant=_ACCOUNTANT.value)
  planned_aggregation = aggregation.Aggregation(
      'dp_ftrl' if _SAMPLING.value == 'shuffled' else 'dp_adaptive', z,
      _CLIENTS_PER_ROUND.value, clipped_count_stddev=_CLIPPED_COUNT_STDDEV.value,
      zeroing_norm=None)
  try:
    (value_z, count_stddev), advice = planned_aggregation.noise_split(), None
  except ValueError as e:
    (value_z, count_stddev), advice = (None, None), str(e)
  events = planned.events(z)
  report = privacy_report.build_report(
      events, delta=_DELTA.value, num_clients=_NUM_CLIENTS.value,
      clients_per_round=_CLIENTS_PER_ROUND.value, sampling=_SAMPLING.value,
      sampling_probability=planned.sampler().sampling_probability, noise_multiplier=z,
      value_noise_multiplier=value_z, clipped_count_stddev=count_stddev,
      mechanism=planned_aggregation.report_record(),
      unit_of_privacy=_UNIT_OF_PRIVACY.value, ledger_sha256=None,
      stop_reason='planned (no training)')
  if _TARGET_EPSILON.value is not None:
    report['calibration'] = {'target_epsilon': _TARGET_EPSILON.value,
                             'accountant': _ACCOUNTANT.value,
                             'noise_multiplier': z}
  if advice:
    report['warnings'].append(f'TFF adaptive clipping cannot run this: {advice}')
  if _AT_EPSILON.value is not None:
    delta_rdp, delta_pld = accounting.delta_for_epsilon(events, _AT_EPSILON.value)
    report['delta_at_epsilon'] = {'epsilon': _AT_EPSILON.value,
                                  'delta_rdp': delta_rdp, 'delta_pld': delta_pld}
  return report


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if _VERIFY.value or _RUN_DIR.value:
    if not (_VERIFY.value and _RUN_DIR.value):
      raise app.UsageError('--verify and --run_dir go together.')
    return verify(_RUN_DIR.value)
  print(json.dumps(plan(), indent=2, allow_nan=False))
  return 0


if __name__ == '__main__':
  app.run(main)
