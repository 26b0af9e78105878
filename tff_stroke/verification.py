"""Re-checks a run's privacy report from its ledger, config and metrics.

Every check that fails adds a message naming what disagrees; an empty list
means the report is what the ledger, the config and the metrics say.
"""

import csv
import hashlib
import json
import math
import os

from tff_stroke import accounting
from tff_stroke import dp_events
from tff_stroke import privacy_report

RELATIVE_TOLERANCE = 1e-9
# Noise multipliers in the ledger come from float32 aggregator state.
NOISE_TOLERANCE = 1e-6


def _load_json(path, problems):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    problems.append(f'{path}: cannot read ({e})')
    return None


def _close(a, b, tolerance=RELATIVE_TOLERANCE):
  if a is None or b is None:
    return a is b
  return math.isclose(a, b, rel_tol=tolerance, abs_tol=1e-12)


def verify_run(run_dir: str) -> tuple[list[str], dict]:
  """Returns (problems, recomputed figures) for the run at `run_dir`."""
  problems = []
  privacy_dir = os.path.join(run_dir, 'privacy')
  report = _load_json(os.path.join(privacy_dir, 'report.json'), problems)
  ledger_path = os.path.join(privacy_dir, 'ledger.json')
  ledger = _load_json(ledger_path, problems)
  config = _load_json(os.path.join(run_dir, 'config.json'), problems)
  if report is None or ledger is None or config is None:
    return problems, {}

  with open(ledger_path, 'rb') as f:
    if hashlib.sha256(f.read()).hexdigest() != report.get('ledger_sha256'):
      problems.append('ledger.json does not match the sha256 in report.json')

  entries = ledger.get('entries', [])
  rounds = [e.get('round') for e in entries]
  if rounds != list(range(1, len(entries) + 1)):
    problems.append(f'ledger rounds are not 1..{len(entries)} in order: {rounds}')
  if report.get('rounds_completed') != len(entries):
    problems.append(f'report says {report.get("rounds_completed")} rounds, '
                    f'the ledger holds {len(entries)}')

  for key in ('noise_multiplier', 'delta', 'sampling', 'sampling_probability',
              'num_clients', 'unit_of_privacy'):
    if config.get(key) != report.get(key):
      problems.append(f'{key}: config.json has {config.get(key)!r}, '
                      f'report.json has {report.get(key)!r}')

  aggregator = config.get('aggregator', 'dp_adaptive')
  if aggregator != report.get('mechanism', {}).get('aggregator'):
    problems.append(f'aggregator: config.json has {aggregator!r}, report.json has '
                    f'{report.get("mechanism", {}).get("aggregator")!r}')

  discarded = ledger.get('discarded', [])
  left_out = sum(len(e.get('clients_left_out', {})) for e in discarded + entries)
  if report.get('clients_left_out', 0) != left_out:
    problems.append(f'report says {report.get("clients_left_out")} clients left out, '
                    f'the ledger lists {left_out}')
  if report.get('round_executions_discarded', 0) != len(discarded):
    problems.append(f'report says {report.get("round_executions_discarded")} discarded '
                    f'round executions, the ledger holds {len(discarded)}')
  try:
    events = [dp_events.event_from_json(e['round_event']) for e in discarded + entries]
    for entry in discarded + entries:
      aggregator_event = dp_events.event_from_json(entry['aggregator_event'])
      z = dp_events.effective_noise_multiplier(aggregator_event)
      if not _close(z, config.get('noise_multiplier'), NOISE_TOLERANCE):
        problems.append(f'round {entry["round"]}: aggregator noise multiplier {z:.6g} '
                        f'is not the configured {config.get("noise_multiplier")}')
  except (KeyError, TypeError, ValueError) as e:
    problems.append(f'ledger.json: an event cannot be read ({e})')
    return problems, {}
  _check_sampling(events, config, aggregator, problems)
  _check_metrics(run_dir, entries, problems)

  delta = config.get('delta')
  recomputed = {'rounds': len(events), 'delta': delta,
                'epsilon_rdp': None, 'epsilon_pld': None}
  if events:
    eps_rdp, _ = accounting.epsilon_rdp(events, delta)
    eps_pld = accounting.epsilon_pld(events, delta)
    recomputed.update(epsilon_rdp=privacy_report.finite_or_none(eps_rdp),
                      epsilon_pld=privacy_report.finite_or_none(eps_pld))
  for key in ('epsilon_rdp', 'epsilon_pld'):
    if not _close(recomputed[key], report.get(key), 1e-6):
      problems.append(f'{key}: report.json has {report.get(key)}, the ledger gives '
                      f'{recomputed[key]}')
  return problems, recomputed


def _check_sampling(events, config, aggregator, problems):
  expected_type = {'poisson': 'PoissonSampledDpEvent', 'uniform':
                   'SampledWithoutReplacementDpEvent', 'all': 'GaussianDpEvent',
                   'shuffled': 'SingleEpochTreeAggregationDpEvent'}
  wanted = ('NonPrivateDpEvent' if aggregator == 'none'
            else expected_type.get(config.get('sampling')))
  for round_num, event in enumerate(events, start=1):
    if type(event).__name__ != wanted:
      problems.append(f'round {round_num}: event {type(event).__name__} does not '
                      f'match sampling {config.get("sampling")!r} with aggregator '
                      f'{aggregator!r}')
    elif wanted == 'PoissonSampledDpEvent' and not _close(
        event.sampling_probability, config.get('sampling_probability')):
      problems.append(f'round {round_num}: sampling probability '
                      f'{event.sampling_probability} is not the configured '
                      f'{config.get("sampling_probability")}')


def _check_metrics(run_dir, entries, problems):
  path = os.path.join(run_dir, 'metrics.csv')
  try:
    with open(path) as f:
      rows = list(csv.DictReader(f))
  except OSError as e:
    problems.append(f'{path}: cannot read ({e})')
    return
  if [int(r['round']) for r in rows] != [e.get('round') for e in entries]:
    problems.append(f'metrics.csv has rounds {[int(r["round"]) for r in rows]}, '
                    f'the ledger {[e.get("round") for e in entries]}')
    return
  for row, entry in zip(rows, entries):
    if int(row['clients_sampled']) != entry.get('clients_sampled'):
      problems.append(f'round {entry["round"]}: metrics.csv has '
                      f'{row["clients_sampled"]} clients, the ledger '
                      f'{entry.get("clients_sampled")}')
