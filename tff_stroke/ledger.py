"""The privacy ledger: one entry per round that ran, written after each round.

Each entry holds the aggregator's DpEvent (from its state) and the round's
event under the sampling, both serialised so any dp_accounting accountant can
replay them (see `dp_events.event_from_json`).

A resumed run continues from its last checkpoint. Rounds that ran after that
checkpoint were released (ledger, metrics) before the run died, so they are
not forgotten: they move to `discarded` and still count towards epsilon.
"""

import hashlib
import json
import os
from typing import Optional

import dp_accounting

from data_pipelines import json_files
from tff_stroke import dp_events


class PrivacyLedger:
  """Appends round entries and rewrites `path` atomically after each one."""

  def __init__(self, path: str, entries: tuple = (), discarded: tuple = ()):
    self.path = path
    self.entries = list(entries)
    self.discarded = list(discarded)
    self._write()

  @classmethod
  def resume(cls, path: str, checkpoint_entries: list[dict]) -> 'PrivacyLedger':
    """The ledger of a run resumed from a checkpoint holding `checkpoint_entries`.

    Entries on disk beyond the checkpoint join `discarded`; earlier entries
    must agree with the checkpoint.

    Raises:
      ValueError: the ledger on disk contradicts the checkpoint.
    """
    on_disk = {'entries': [], 'discarded': []}
    if os.path.exists(path):
      with open(path) as f:
        on_disk = json.load(f)
    kept = on_disk['entries'][:len(checkpoint_entries)]
    if kept != checkpoint_entries[:len(kept)]:
      raise ValueError(f'{path}: the ledger contradicts the checkpoint it resumes from')
    lost = on_disk['entries'][len(checkpoint_entries):]
    return cls(path, checkpoint_entries, on_disk.get('discarded', []) + lost)

  def record_round(self, *, round_num: int, aggregator_event: dp_accounting.DpEvent,
                   round_event: dp_accounting.DpEvent, clients_sampled: int,
                   clip_norm: float, clients_left_out: Optional[dict] = None) -> None:
    """Appends a round; `clients_left_out` maps sampled clients not trained to why."""
    if round_num != len(self.entries) + 1:  # a round is never skipped or repeated
      raise ValueError(f'Round {round_num} recorded after {len(self.entries)} rounds.')
    self.entries.append({
        'round': round_num,
        'aggregator_event': dp_events.event_to_json(aggregator_event),
        'round_event': dp_events.event_to_json(round_event),
        'effective_noise_multiplier': dp_events.effective_noise_multiplier(aggregator_event),
        'value_noise_multiplier': dp_events.value_noise_multiplier(aggregator_event),
        'clients_sampled': clients_sampled,
        'clients_left_out': dict(sorted((clients_left_out or {}).items())),
        'clip_norm_in_force': clip_norm,
    })
    self._write()

  def round_events(self) -> list[dp_accounting.DpEvent]:
    """Events of every round execution: discarded ones first, then the entries."""
    return [dp_events.event_from_json(e['round_event'])
            for e in self.discarded + self.entries]

  def clients_left_out(self) -> int:
    """Sampled clients left out of their round, over every round execution."""
    return sum(len(e.get('clients_left_out', {})) for e in self.discarded + self.entries)

  def sha256(self) -> str:
    with open(self.path, 'rb') as f:
      return hashlib.sha256(f.read()).hexdigest()

  def _write(self):
    json_files.write_json_atomically(
        {'entries': self.entries, 'discarded': self.discarded}, self.path, indent=1)
