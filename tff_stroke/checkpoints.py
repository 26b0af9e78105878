"""Checkpoints of a run through tff.program.FileProgramStateManager.

A checkpoint holds everything a resumed run needs to continue as if it had
not stopped: the server state, the round number, the privacy ledger's
entries, the client sampler's RNG state and the metrics rows so far. Each
is written atomically by TFF (a SavedModel written aside, then renamed).
"""

import asyncio
import dataclasses
import json
from typing import Any, Optional

import tensorflow_federated as tff

PREFIX = 'round_'


@dataclasses.dataclass(frozen=True)
class Checkpoint:
  round_num: int
  server_state: Any
  ledger_entries: list
  sampler_rng_state: dict
  metrics_rows: list


class RunCheckpoints:
  """Saves and loads the checkpoints in one folder, one version per round."""

  def __init__(self, directory: str, keep_total: int = 0):
    """`keep_total` > 0 keeps that many of the newest (and the first); 0 keeps all."""
    self._manager = tff.program.FileProgramStateManager(
        directory, prefix=PREFIX, keep_total=keep_total, keep_first=True)

  def rounds(self) -> list[int]:
    return asyncio.run(self._manager.get_versions()) or []

  def save(self, checkpoint: Checkpoint) -> None:
    asyncio.run(self._manager.save({
        'server_state': checkpoint.server_state,
        'round': checkpoint.round_num,
        'ledger_entries': json.dumps(checkpoint.ledger_entries),
        'sampler_rng_state': json.dumps(checkpoint.sampler_rng_state),
        'metrics_rows': json.dumps(checkpoint.metrics_rows),
    }, checkpoint.round_num))

  def load(self, round_num: int, server_state_structure: Any) -> Checkpoint:
    """The checkpoint of `round_num`; the structure is a fresh server state."""
    structure = {'server_state': server_state_structure, 'round': 0,
                 'ledger_entries': '', 'sampler_rng_state': '', 'metrics_rows': ''}
    saved = asyncio.run(self._manager.load(round_num, structure))
    return Checkpoint(
        round_num=int(saved['round']), server_state=saved['server_state'],
        ledger_entries=json.loads(_text(saved['ledger_entries'])),
        sampler_rng_state=json.loads(_text(saved['sampler_rng_state'])),
        metrics_rows=json.loads(_text(saved['metrics_rows'])))

  def latest_round(self) -> Optional[int]:
    rounds = self.rounds()
    return max(rounds) if rounds else None


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)
