"""The epsilon report of a run, computed from the events in its ledger."""

import importlib.metadata
import json
import math
import os
from typing import Optional

import dp_accounting

from tff_stroke import accounting

UNIT_MEANINGS = {
    'site': 'all data of one site (hospital) may be added or removed',
    'subject': 'all slices of one subject (patient) may be added or removed',
}

CAVEATS = [
    'The server is trusted: it adds the noise and sees each clipped update.',
    'Per-round training metrics (loss, Dice, example counts) are aggregated '
    'without noise; they are simulation diagnostics, not covered by epsilon.',
    'Held-out evaluation data is not protected by this guarantee.',
]


def _finite_or_none(value: float) -> Optional[float]:
  """JSON has no infinity: epsilon without a finite bound is written as null."""
  return None if math.isinf(value) else value


def build_report(round_events: list[dp_accounting.DpEvent], *, delta: float,
                 num_clients: int, clients_per_round: float, sampling: str,
                 sampling_probability: float, noise_multiplier: float,
                 value_noise_multiplier: float, clipped_count_stddev: float,
                 clipping: dict, zeroing_norm: Optional[float],
                 unit_of_privacy: str, ledger_sha256: Optional[str]) -> dict:
  """The report dict: settings, epsilon by RDP and PLD, and per-round epsilon."""
  curve = accounting.epsilon_per_round(round_events, delta) if round_events else []
  last = curve[-1] if curve else accounting.Epsilon(0, 0.0, math.nan, 0.0)
  warnings = []
  if delta >= 1.0 / num_clients:
    warnings.append(f'delta {delta:g} is not below 1/num_clients = '
                    f'{1.0 / num_clients:g}: the guarantee is weak.')
  if noise_multiplier == 0.0:
    warnings.append('noise_multiplier is 0: no differential privacy (epsilon is null).')
  return {
      'epsilon_rdp': _finite_or_none(last.epsilon_rdp),
      'rdp_order': last.rdp_order if curve else None,
      'epsilon_pld': _finite_or_none(last.epsilon_pld),
      'delta': delta,
      'noise_multiplier': noise_multiplier,
      'value_noise_multiplier': value_noise_multiplier,
      'clipped_count_stddev': clipped_count_stddev,
      'sampling': sampling,
      'sampling_probability': sampling_probability,
      'num_clients': num_clients,
      'expected_clients_per_round': clients_per_round,
      'rounds_completed': len(round_events),
      'unit_of_privacy': unit_of_privacy,
      'unit_of_privacy_meaning': UNIT_MEANINGS[unit_of_privacy],
      'mechanism': {
          'algorithm': 'DP-FedAvg (McMahan et al. 2018), unweighted, fixed '
                       'denominator = expected clients per round',
          'noise': 'Gaussian',
          'clipping': clipping,
          'zeroing_norm': zeroing_norm,
      },
      'trust_model': 'trusted server: the server adds the noise',
      'accountants': {
          'library': f'dp-accounting {importlib.metadata.version("dp-accounting")}',
          'rdp': 'RdpAccountant, default orders',
          'pld': f'PLDAccountant, value_discretization_interval='
                 f'{accounting.PLD_DISCRETIZATION:g} (pessimistic)',
          'neighboring_relation': 'add or remove one client',
      },
      'per_round': [
          {'round': e.rounds, 'epsilon_rdp': _finite_or_none(e.epsilon_rdp),
           'epsilon_pld': _finite_or_none(e.epsilon_pld)} for e in curve
      ],
      'ledger': 'ledger.json',
      'ledger_sha256': ledger_sha256,
      'warnings': warnings,
      'caveats': CAVEATS,
  }


def write_report(report: dict, path: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + '.tmp', 'w') as f:
    json.dump(report, f, indent=2, allow_nan=False)
  os.replace(path + '.tmp', path)
