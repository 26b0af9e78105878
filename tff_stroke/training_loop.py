"""The round loop: sample clients, run a round, record it in ledger and metrics.

Every round that ran is recorded: the ledger entry is written before the next
round starts, and an exception ends the loop instead of skipping a round. A
resumed run passes the ledger and metrics rows of its checkpoint and the
loop continues after the ledger's last round.
"""

from collections.abc import Callable, Sequence
import csv
import time
from typing import Any, Optional

import dp_accounting

import tensorflow as tf
import tensorflow_federated as tff

from tff_stroke import budget as budget_lib
from tff_stroke import dp_events
from tff_stroke import dp_fedavg
from tff_stroke import ledger as ledger_lib

METRICS_FIELDS = ('round', 'loss', 'train_pooled_dice', 'clients_sampled',
                  'num_examples', 'clip_norm', 'next_clip_norm', 'zeroed_count',
                  'seconds')


def round_metrics(metrics: Any) -> dict:
  """Flattens the learning process's metrics into one metrics.csv row.

  The aggregator reports the clip norm adapted at the end of the round, that
  is, the one in force in the next round.
  """
  train = metrics['client_work']['train']
  aggregator = metrics['aggregator']
  dp_metrics = aggregator.get('zeroing', aggregator)['dp_query_metrics']
  return {
      'loss': float(train['loss']),
      'train_pooled_dice': float(train['pooled_dice']),
      'num_examples': int(train['num_examples']),
      'next_clip_norm': float(dp_metrics['clip']),
      'zeroed_count': int(aggregator.get('zeroed_count', 0)),
  }


def run_rounds(process: tff.learning.templates.LearningProcess, state: Any, *,
               sampler, make_dataset: Callable[[str, int], tf.data.Dataset],
               total_rounds: int, ledger: ledger_lib.PrivacyLedger,
               metrics_path: str, initial_clip_norm: float,
               expected_aggregator_event: dp_accounting.DpEvent,
               budget: Optional[budget_lib.EpsilonBudget] = None,
               previous_rows: Sequence[dict] = (),
               after_round: Optional[Callable[[int, Any, list[dict]], None]] = None,
               log: Callable[[str], None] = print) -> tuple[Any, str]:
  """Runs rounds up to `total_rounds`; returns (final server state, stop reason).

  Args:
    process: a DP-FedAvg learning process (see `dp_fedavg.build_process`).
    state: its initial state.
    sampler: draws each round's clients and makes the round's DpEvent (see
      `sampling`).
    make_dataset: (client_id, round_num) -> the client's training dataset.
    total_rounds: rounds to run.
    ledger: receives one entry per round.
    metrics_path: metrics.csv, one row per round.
    initial_clip_norm: the clip norm in force in round 1.
    expected_aggregator_event: the aggregator's event for round 1 (later
      rounds expect the event of the round before).
    budget: if given, a round runs only if epsilon after it stays within it.
    previous_rows: metrics rows of the rounds already in `ledger` (resume).
    after_round: called with (round_num, state, metrics rows so far) after
      each round is recorded; checkpoints and evaluation hook in here.
    log: receives one progress line per round.
  """
  rows = [dict(r) for r in previous_rows]
  if len(rows) != len(ledger.entries):
    raise ValueError(f'{len(rows)} metrics rows for {len(ledger.entries)} ledger rounds')
  clip_norm = rows[-1]['next_clip_norm'] if rows else initial_clip_norm
  next_aggregator_event = (
      dp_events.event_from_json(ledger.entries[-1]['aggregator_event'])
      if ledger.entries else expected_aggregator_event)
  stop_reason = 'completed total_rounds'
  with open(metrics_path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=METRICS_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    for round_num in range(len(rows) + 1, total_rounds + 1):
      if budget is not None:
        planned = sampler.round_event(dp_events.gaussian_equivalent(next_aggregator_event))
        if not budget.allows(ledger.round_events() + [planned]):
          stop_reason = (f'stopped before round {round_num}: epsilon would exceed '
                         f'the target {budget.target_epsilon:g} ({budget.accountant})')
          log(stop_reason)
          break
      start = time.monotonic()
      clients = sampler.sample()
      datasets = [make_dataset(c, round_num) for c in clients]
      output = process.next(state, datasets)
      state = output.state
      aggregator_event = dp_fedavg.aggregator_event(state)
      next_aggregator_event = aggregator_event
      row = {'round': round_num, 'clients_sampled': len(clients),
             'clip_norm': clip_norm, **round_metrics(output.metrics),
             'seconds': round(time.monotonic() - start, 3)}
      ledger.record_round(
          round_num=round_num, aggregator_event=aggregator_event,
          round_event=sampler.round_event(
              dp_events.gaussian_equivalent(aggregator_event)),
          clients_sampled=len(clients), clip_norm=row['clip_norm'])
      writer.writerow(row)
      f.flush()
      rows.append(row)
      clip_norm = row['next_clip_norm']
      log(f'round {round_num}/{total_rounds}: {len(clients)} clients, '
          f'loss {row["loss"]:.4f}, clip {row["clip_norm"]:.4f}, '
          f'{row["seconds"]:.1f}s')
      if after_round is not None:
        after_round(round_num, state, rows)
  return state, stop_reason
