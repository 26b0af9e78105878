"""The round loop: sample clients, run a round, record it in ledger and metrics.

Every round that ran is recorded: the ledger entry is written before the next
round starts, and an exception ends the loop instead of skipping a round. A
resumed run passes the ledger and metrics rows of its checkpoint and the
loop continues after the ledger's last round.
"""

from collections.abc import Callable, Mapping, Sequence
import csv
import time
from typing import Any, Optional

import tensorflow_federated as tff

from tff_stroke import accounting
from tff_stroke import aggregation as aggregation_lib
from tff_stroke import budget as budget_lib
from tff_stroke import dp_events
from tff_stroke import ledger as ledger_lib

METRICS_FIELDS = ('round', 'loss', 'train_pooled_dice', 'clients_sampled',
                  'clients_left_out', 'num_examples', 'clip_norm', 'next_clip_norm',
                  'zeroed_count', 'epsilon_rdp', 'holdout_dice', 'holdout_lesion_f1', 'seconds')


def round_metrics(metrics: Any) -> dict:
  """Flattens the learning process's metrics into one metrics.csv row.

  Adaptive clipping reports the clip norm adapted at the end of the round,
  that is, the one in force in the next round; other aggregators report none.
  """
  train = metrics['client_work']['train']
  aggregator = metrics['aggregator']
  inner = aggregator.get('zeroing', aggregator)
  clip = inner.get('dp_query_metrics', {}).get('clip') if isinstance(inner, Mapping) else None
  return {
      'loss': float(train['loss']),
      'train_pooled_dice': float(train['pooled_dice']),
      'num_examples': int(train['num_examples']),
      'next_clip_norm': None if clip is None else float(clip),
      'zeroed_count': int(aggregator.get('zeroed_count', 0)),
  }


def progress_line(row: dict, total_rounds: int) -> str:
  """One round on stdout: clients, loss, clip, epsilon so far, held-out Dice, seconds."""
  clients = f'{row["clients_sampled"]} clients'
  if row.get('clients_left_out'):
    clients += f' ({row["clients_left_out"]} left out)'
  parts = [f'round {row["round"]}/{total_rounds}: {clients}',
           f'loss {row["loss"]:.4f}']
  if row['clip_norm'] is not None:
    parts.append(f'clip {row["clip_norm"]:.4f}')
  parts.append(f'epsilon (RDP) {row["epsilon_rdp"]:.4g}')
  if row.get('holdout_dice') is not None:
    parts.append(f'held-out Dice {row["holdout_dice"]:.3f}')
  return ', '.join(parts) + f', {row["seconds"]:.1f}s'


def run_rounds(process: tff.learning.templates.LearningProcess, state: Any, *,
               sampler, client_input: Callable[[str, int], Any],
               total_rounds: int, ledger: ledger_lib.PrivacyLedger,
               metrics_path: str, aggregation: aggregation_lib.Aggregation, delta: float,
               budget: Optional[budget_lib.EpsilonBudget] = None,
               previous_rows: Sequence[dict] = (),
               evaluate: Optional[Callable[[int, Any], Optional[dict]]] = None,
               check_clients: Optional[Callable[[list[str], int], dict[str, str]]] = None,
               after_round: Optional[Callable[[int, Any, list[dict]], None]] = None,
               log: Callable[[str], None] = print) -> tuple[Any, str]:
  """Runs rounds up to `total_rounds`; returns (final server state, stop reason).

  Args:
    process: a FedAvg learning process (see `dp_fedavg.build_process`).
    state: its initial state.
    sampler: draws each round's clients and makes the round's DpEvent (see
      `sampling`).
    client_input: (client_id, round_num) -> what `process.next` takes for the
      client: its dataset, or the key its dataset computation builds it from.
    total_rounds: rounds to run.
    ledger: receives one entry per round.
    metrics_path: metrics.csv, one row per round.
    aggregation: the process's aggregation; it reads each round's DpEvent
      from the state and gives the clip norm of round 1.
    delta: the delta of the epsilon-so-far in the metrics and progress lines.
    budget: if given, a round runs only if epsilon after it stays within it
      (the next round is expected to release the previous round's event).
    previous_rows: metrics rows of the rounds already in `ledger` (resume).
    evaluate: (round_num, state) -> held-out metrics for the round's row, or
      None when the round is not evaluated.
    check_clients: (sampled clients, round_num) -> {client: reason} for those
      whose data cannot be used; they are left out of the round (and logged),
      the round's event stays that of the full sample.
    after_round: called with (round_num, state, metrics rows so far) after
      each round is recorded; checkpoints and evaluation hook in here.
    log: receives one progress line per round.
  """
  rows = [dict(r) for r in previous_rows]
  if len(rows) != len(ledger.entries):
    raise ValueError(f'{len(rows)} metrics rows for {len(ledger.entries)} ledger rounds')
  fixed_clip = aggregation.l2_norm_clip if aggregation.private else None
  clip_norm = rows[-1]['next_clip_norm'] if rows else fixed_clip
  next_aggregator_event = (
      dp_events.event_from_json(ledger.entries[-1]['aggregator_event'])
      if ledger.entries else aggregation.expected_aggregator_event())
  stop_reason = 'completed total_rounds'
  with open(metrics_path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=METRICS_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    for round_num in range(len(rows) + 1, total_rounds + 1):
      if budget is not None:
        planned = dp_events.round_event(sampler, next_aggregator_event)
        if not budget.allows(ledger.round_events() + [planned]):
          stop_reason = (f'stopped before round {round_num}: epsilon would exceed '
                         f'the target {budget.target_epsilon:g} ({budget.accountant})')
          log(stop_reason)
          break
      start = time.monotonic()
      clients = sampler.sample()
      left_out = check_clients(clients, round_num) if check_clients is not None else {}
      for client, reason in sorted(left_out.items()):
        log(f'round {round_num}: client {client} left out: {reason}')
      output = process.next(state, [client_input(c, round_num) for c in clients
                                    if c not in left_out])
      state = output.state
      aggregator_event = aggregation.aggregator_event(state)
      next_aggregator_event = aggregator_event
      row = {'round': round_num, 'clients_sampled': len(clients),
             'clients_left_out': len(left_out),
             'clip_norm': clip_norm, **round_metrics(output.metrics),
             'seconds': round(time.monotonic() - start, 3)}
      if row['next_clip_norm'] is None:
        row['next_clip_norm'] = fixed_clip
      ledger.record_round(
          round_num=round_num, aggregator_event=aggregator_event,
          round_event=dp_events.round_event(sampler, aggregator_event),
          clients_sampled=len(clients), clip_norm=row['clip_norm'],
          clients_left_out=left_out)
      row['epsilon_rdp'] = accounting.epsilon_rdp(ledger.round_events(), delta)[0]
      if evaluate is not None:
        row.update(evaluate(round_num, state) or {})
      writer.writerow(row)
      f.flush()
      rows.append(row)
      clip_norm = row['next_clip_norm']
      log(progress_line(row, total_rounds))
      if after_round is not None:
        after_round(round_num, state, rows)
  return state, stop_reason
