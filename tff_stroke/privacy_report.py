"""The epsilon report of a run (or a planned run), from its per-round events.

`report.json` for machines and auditors, `report.md` for a person, and
`epsilon.png` for the curve.
"""

import importlib.metadata
import math
import os
from typing import Optional

import dp_accounting

from data_pipelines import json_files
from tff_stroke import accounting

UNIT_MEANINGS = {
    'site': 'all data of one site (hospital)',
    'subject': 'all slices of one subject (patient)',
}

RELATION_MEANINGS = {
    'ADD_OR_REMOVE_ONE': 'adding or removing ',
    'REPLACE_ONE': 'replacing ',
    'REPLACE_SPECIAL': 'replacing with an empty contribution ',
}

SAMPLING_MEANINGS = {
    'poisson': 'Poisson: each client joins a round independently with probability q',
    'uniform': 'uniform: exactly m clients per round, without replacement (RDP only)',
    'all': 'every client in every round',
    'shuffled': 'no sampling: one pass over the clients in a seeded random order, '
                'each client in at most one round',
}

CAVEATS = [
    'The server is trusted: it adds the noise and sees each clipped update.',
    'Per-round training metrics (loss, Dice, example counts) are aggregated '
    'without noise; they are simulation diagnostics, not covered by epsilon.',
    'Held-out evaluation data is not protected by this guarantee.',
    'The guarantee holds only if clients were sampled as stated; the sampler '
    'that ran produced the events in the ledger.',
]

LEFT_OUT_TREATMENT = (
    'A sampled client whose shard was missing or unreadable at round time was left '
    'out of that round (ledger: clients_left_out). Such rounds are accounted as '
    'if the client had taken part: it was sampled with the same probability, and '
    'the noisy mean keeps its fixed denominator, so leaving it out can only lower '
    'the privacy loss; epsilon stays an upper bound.')


def finite_or_none(value: Optional[float]) -> Optional[float]:
  """JSON has no infinity: epsilon without a finite bound is written as null."""
  return None if value is None or math.isinf(value) else value


def build_report(round_events: list[dp_accounting.DpEvent], *, delta: float,
                 num_clients: int, clients_per_round: float, sampling: str,
                 sampling_probability: float, noise_multiplier: float,
                 value_noise_multiplier: Optional[float],
                 clipped_count_stddev: Optional[float], mechanism: dict,
                 unit_of_privacy: str,
                 ledger_sha256: Optional[str],
                 stop_reason: str = 'completed total_rounds',
                 rounds_discarded: int = 0, clients_left_out: int = 0) -> dict:
  """The report dict: settings, epsilon by RDP and PLD, and per-round epsilon.

  `round_events` holds every round execution, the `rounds_discarded` lost to
  restarts first (see ledger.PrivacyLedger.resume). `mechanism` is
  `aggregation.Aggregation.report_record()`. `clients_left_out` counts
  sampled clients whose shard failed its check at round time.
  """
  pld_every = accounting.pld_curve_stride(len(round_events))
  curve = accounting.epsilon_per_round(round_events, delta, pld_stride=pld_every)
  with_pld = accounting.pld_supported(round_events)
  relation = accounting.neighboring_relation(round_events)
  warnings = []
  if delta >= 1.0 / num_clients:
    warnings.append(f'delta {delta:g} is not below 1/num_clients = '
                    f'{1.0 / num_clients:g}: the guarantee is weak.')
  if rounds_discarded:
    warnings.append(f'{rounds_discarded} round executions ran after the last checkpoint '
                    'of an interrupted run and were repeated on resume; they count '
                    'towards epsilon and are the first points of per_round.')
  if noise_multiplier == 0.0:
    warnings.append('noise_multiplier is 0: no differential privacy (epsilon is null).')
  if not with_pld and relation.name == 'REPLACE_SPECIAL':
    pld_note = ('PLD does not support tree aggregation; epsilon_rdp is the guarantee '
                '(one tree, each client in at most one round).')
  elif not with_pld:
    pld_note = ('PLD does not support sampling without replacement; '
                'epsilon_rdp is the guarantee.')
  else:
    pld_note = None
  return {
      'epsilon_rdp': finite_or_none(curve[-1].epsilon_rdp) if curve else 0.0,
      'rdp_order': curve[-1].rdp_order if curve else None,
      'epsilon_pld': (finite_or_none(curve[-1].epsilon_pld) if curve else 0.0)
                     if with_pld else None,
      'epsilon_pld_note': pld_note,
      'delta': delta,
      'noise_multiplier': noise_multiplier,
      'value_noise_multiplier': value_noise_multiplier,
      'clipped_count_stddev': clipped_count_stddev,
      'sampling': sampling,
      'sampling_meaning': SAMPLING_MEANINGS[sampling],
      'sampling_probability': sampling_probability,
      'num_clients': num_clients,
      'expected_clients_per_round': clients_per_round,
      'rounds_completed': len(round_events) - rounds_discarded,
      'round_executions_discarded': rounds_discarded,
      'stop_reason': stop_reason,
      'clients_left_out': clients_left_out,
      'clients_left_out_treatment': LEFT_OUT_TREATMENT,
      'unit_of_privacy': unit_of_privacy,
      'unit_of_privacy_meaning': RELATION_MEANINGS[relation.name]
                                 + UNIT_MEANINGS[unit_of_privacy],
      'mechanism': mechanism,
      'trust_model': 'trusted server: the server adds the noise',
      'software': {name: importlib.metadata.version(name) for name in
                   ('tensorflow-federated', 'tensorflow-privacy', 'dp-accounting')},
      'accountants': {
          'library': f'dp-accounting {importlib.metadata.version("dp-accounting")}',
          'rdp': 'RdpAccountant, default orders',
          'pld': f'PLDAccountant, value_discretization_interval='
                 f'{accounting.PLD_DISCRETIZATION:g} (pessimistic)' if with_pld else None,
          'neighboring_relation': relation.name.lower(),
      },
      'per_round_pld_every': pld_every if with_pld else None,
      'per_round': [_curve_point(e, with_pld and e.rounds % pld_every != 0
                                 and e.rounds != len(curve)) for e in curve],
      'ledger': 'ledger.json' if ledger_sha256 else None,
      'ledger_sha256': ledger_sha256,
      'warnings': warnings,
      'caveats': CAVEATS,
  }


def _curve_point(epsilon: accounting.Epsilon, pld_skipped: bool) -> dict:
  """One round of the curve; PLD is left out where it was not computed."""
  point = {'round': epsilon.rounds, 'epsilon_rdp': finite_or_none(epsilon.epsilon_rdp)}
  if not pld_skipped:
    point['epsilon_pld'] = finite_or_none(epsilon.epsilon_pld)
  return point


def _fmt(value: Optional[float]) -> str:
  return 'no finite bound' if value is None else f'{value:.4g}'


def render_markdown(report: dict, *, every: int = 0) -> str:
  """The report for a person; the table lists epsilon every `every` rounds."""
  per_round = report['per_round']
  pld_every = report.get('per_round_pld_every') or 1
  every = every or pld_every * max(1, len(per_round) // 10 // pld_every)
  main_epsilon = report['epsilon_pld'] if report['epsilon_pld'] is not None \
      else report['epsilon_rdp']
  lines = [
      '# Privacy report', '',
      (f'This model is ({_fmt(main_epsilon)}, {report["delta"]:g})-differentially '
       f'private with respect to {report["unit_of_privacy_meaning"]}, over the '
       f'{report["rounds_completed"]} rounds that ran.' if main_epsilon is not None else
       f'This model has **no finite differential-privacy bound** at delta '
       f'{report["delta"]:g} over the {report["rounds_completed"]} rounds that ran.'), '',
      '## Settings', '',
      f'- Mechanism: {report["mechanism"]["algorithm"]}; noise: '
      f'{report["mechanism"]["noise"]}, effective noise multiplier '
      f'{report["noise_multiplier"]}'
      + (f' (value {report["value_noise_multiplier"]:.4g}, clipped-count stddev '
         f'{report["clipped_count_stddev"]:.4g})'
         if report['clipped_count_stddev'] is not None else ''),
      '- Clipping: ' + ', '.join(f'{k} {v}' for k, v in report['mechanism']['clipping'].items()),
      f'- Sampling: {report["sampling_meaning"]}; q = {report["sampling_probability"]:.4g}, '
      f'{report["num_clients"]} clients, {report["expected_clients_per_round"]} per round expected',
      f'- Rounds: {report["rounds_completed"]} ({report["stop_reason"]})',
      f'- Clients left out at round time: {report["clients_left_out"]}. '
      f'{report["clients_left_out_treatment"]}',
      f'- Accountants: {report["accountants"]["library"]}; epsilon by PLD '
      f'{_fmt(report["epsilon_pld"])}, by RDP {_fmt(report["epsilon_rdp"])} '
      f'(order {report["rdp_order"]}); neighbouring relation: '
      f'{report["accountants"]["neighboring_relation"].replace("_", " ")}', '',
      '## Assumptions and caveats', '',
      *[f'- {c}' for c in report['caveats']],
      *[f'- **Warning:** {w}' for w in report['warnings']],
      *([f'- {report["epsilon_pld_note"]}'] if report['epsilon_pld_note'] else []), '',
      '## Epsilon by round', '',
      '| round | epsilon (PLD) | epsilon (RDP) |', '|---:|---:|---:|',
  ]
  for entry in per_round:
    if entry['round'] % every == 0 or entry['round'] == len(per_round):
      lines.append(f'| {entry["round"]} | {_fmt(entry.get("epsilon_pld"))} | '
                   f'{_fmt(entry["epsilon_rdp"])} |')
  return '\n'.join(lines) + '\n'


def plot_epsilon(report: dict, path: str, *, target_epsilon: Optional[float] = None) -> None:
  """Epsilon against rounds, RDP and PLD, with the target if one was set."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  figure, axes = plt.subplots(figsize=(6, 4))
  for key, label in (('epsilon_pld', 'PLD'), ('epsilon_rdp', 'RDP')):
    points = [(e['round'], e[key]) for e in report['per_round'] if e.get(key) is not None]
    if points:
      axes.plot(*zip(*points), marker='.', label=label)
  if target_epsilon is not None:
    axes.axhline(target_epsilon, color='red', linestyle='--', label='target')
  axes.set_xlabel('round')
  axes.set_ylabel(f'epsilon at delta = {report["delta"]:g}')
  axes.set_title(f'Privacy spent (unit: {report["unit_of_privacy"]})')
  axes.legend()
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)


def write_report(report: dict, privacy_dir: str, *,
                 target_epsilon: Optional[float] = None) -> None:
  """Writes report.json, report.md and epsilon.png into `privacy_dir`."""
  json_files.write_json_atomically(report, os.path.join(privacy_dir, 'report.json'),
                                   indent=2, allow_nan=False)
  with open(os.path.join(privacy_dir, 'report.md'), 'w') as f:
    f.write(render_markdown(report))
  plot_epsilon(report, os.path.join(privacy_dir, 'epsilon.png'),
               target_epsilon=target_epsilon)
