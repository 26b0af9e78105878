"""The privacy ledger: one entry per round that ran, written after each round.

Each entry holds the aggregator's DpEvent (from its state) and the round's
event under the sampling, both serialised so any dp_accounting accountant can
replay them (see `dp_events.event_from_json`).
"""

import hashlib

import dp_accounting

from tff_stroke import dp_events
from tff_stroke import json_files


class PrivacyLedger:
  """Appends round entries and rewrites `path` atomically after each one."""

  def __init__(self, path: str):
    self.path = path
    self.entries = []
    self._write()

  def record_round(self, *, round_num: int, aggregator_event: dp_accounting.DpEvent,
                   round_event: dp_accounting.DpEvent, clients_sampled: int,
                   clip_norm: float) -> None:
    if round_num != len(self.entries) + 1:  # a round is never skipped or repeated
      raise ValueError(f'Round {round_num} recorded after {len(self.entries)} rounds.')
    self.entries.append({
        'round': round_num,
        'aggregator_event': dp_events.event_to_json(aggregator_event),
        'round_event': dp_events.event_to_json(round_event),
        'effective_noise_multiplier': dp_events.effective_noise_multiplier(aggregator_event),
        'value_noise_multiplier': dp_events.value_noise_multiplier(aggregator_event),
        'clients_sampled': clients_sampled,
        'clip_norm_in_force': clip_norm,
    })
    self._write()

  def round_events(self) -> list[dp_accounting.DpEvent]:
    return [dp_events.event_from_json(e['round_event']) for e in self.entries]

  def sha256(self) -> str:
    with open(self.path, 'rb') as f:
      return hashlib.sha256(f.read()).hexdigest()

  def _write(self):
    json_files.write_json_atomically({'entries': self.entries}, self.path, indent=1)
