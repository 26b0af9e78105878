"""The round loop with a stand-in process: ledger, metrics and the budget stop.

The stand-in returns the state shape of TFF's DP aggregator, so the loop's
bookkeeping is tested without compiling a learning process.
"""

import csv
import json
import types

import dp_accounting
import pytest
from tensorflow_federated.python.aggregators import differential_privacy

from tff_stroke import accounting
from tff_stroke import budget as budget_lib
from tff_stroke import ledger as ledger_lib
from tff_stroke import sampling
from tff_stroke import training_loop

AGGREGATOR_EVENT = dp_accounting.ComposedDpEvent([
    dp_accounting.GaussianDpEvent(1.2), dp_accounting.GaussianDpEvent(4.0)])


class StandInProcess:
  """Returns a DP aggregator state and metrics as TFF's process does."""

  def __init__(self):
    self.calls = []

  def next(self, state, datasets):
    self.calls.append(len(datasets))
    dp_state = differential_privacy.DPAggregatorState(
        query_state=None, agg_state=None,
        dp_event=AGGREGATOR_EVENT.to_named_tuple(), is_init_state=False)
    metrics = {'client_work': {'train': {'loss': 1.0, 'pooled_dice': 0.5,
                                         'num_examples': 8 * len(datasets)}},
               'aggregator': {'dp_query_metrics': {'clip': 0.2 + len(self.calls)}}}
    return types.SimpleNamespace(state=types.SimpleNamespace(aggregator={'dp': dp_state}),
                                 metrics=metrics)


def _run(tmp_path, sampler, rounds, budget=None):
  process = StandInProcess()
  ledger = ledger_lib.PrivacyLedger(str(tmp_path / 'privacy' / 'ledger.json'))
  _, reason = training_loop.run_rounds(
      process, None, sampler=sampler, make_dataset=lambda c, r: (c, r),
      total_rounds=rounds, ledger=ledger, metrics_path=str(tmp_path / 'metrics.csv'),
      initial_clip_norm=0.1, expected_aggregator_event=AGGREGATOR_EVENT,
      budget=budget, log=lambda _: None)
  with open(tmp_path / 'metrics.csv') as f:
    rows = list(csv.DictReader(f))
  return process, ledger, rows, reason


def test_every_round_is_recorded_with_the_sampler_event(tmp_path):
  sampler = sampling.PoissonSampler([f'c{i}' for i in range(10)], 0.3, seed=0)
  process, ledger, rows, reason = _run(tmp_path, sampler, 4)
  assert reason == 'completed total_rounds'
  assert [e['round'] for e in ledger.entries] == [1, 2, 3, 4]
  assert [e['clients_sampled'] for e in ledger.entries] == process.calls
  assert [int(r['clients_sampled']) for r in rows] == process.calls
  # The clip in force is the one the aggregator adapted in the round before.
  assert [e['clip_norm_in_force'] for e in ledger.entries] == [0.1, 1.2, 2.2, 3.2]
  z = (1.2**-2 + 4.0**-2) ** -0.5
  assert ledger.entries[0]['effective_noise_multiplier'] == pytest.approx(z)
  assert ledger.entries[0]['value_noise_multiplier'] == 1.2
  assert ledger.round_events() == [dp_accounting.PoissonSampledDpEvent(
      0.3, dp_accounting.GaussianDpEvent(z))] * 4
  with open(ledger.path) as f:
    assert len(json.load(f)['entries']) == 4


def test_uniform_sampler_runs_fixed_size_rounds_and_records_them(tmp_path):
  sampler = sampling.UniformSampler([f'c{i}' for i in range(10)], 3, seed=0)
  process, ledger, _, _ = _run(tmp_path, sampler, 5)
  assert process.calls == [3] * 5
  event = ledger.round_events()[0]
  assert isinstance(event, dp_accounting.SampledWithoutReplacementDpEvent)
  assert (event.source_dataset_size, event.sample_size) == (10, 3)


def test_budget_stops_before_the_round_that_would_exceed_it(tmp_path):
  sampler = sampling.PoissonSampler([f'c{i}' for i in range(10)], 0.3, seed=0)
  z = (1.2**-2 + 4.0**-2) ** -0.5
  event = dp_accounting.PoissonSampledDpEvent(0.3, dp_accounting.GaussianDpEvent(z))
  eps3 = accounting.epsilon_pld([event] * 3, 1e-5)
  eps4 = accounting.epsilon_pld([event] * 4, 1e-5)
  budget = budget_lib.EpsilonBudget((eps3 + eps4) / 2, 1e-5)
  process, ledger, rows, reason = _run(tmp_path, sampler, 10, budget)
  assert len(process.calls) == len(ledger.entries) == len(rows) == 3
  assert reason.startswith('stopped before round 4')
  assert accounting.epsilon_pld(ledger.round_events(), 1e-5) <= budget.target_epsilon


def test_budget_too_small_for_one_round(tmp_path):
  sampler = sampling.AllClientsSampler(['a', 'b'])
  process, ledger, _, reason = _run(tmp_path, sampler, 3,
                                    budget_lib.EpsilonBudget(1e-3, 1e-5, 'rdp'))
  assert process.calls == [] and ledger.entries == []
  assert 'before round 1' in reason


def test_ledger_refuses_a_skipped_round(tmp_path):
  ledger = ledger_lib.PrivacyLedger(str(tmp_path / 'ledger.json'))
  with pytest.raises(ValueError, match='Round 2 recorded after 0'):
    ledger.record_round(round_num=2, aggregator_event=AGGREGATOR_EVENT,
                        round_event=AGGREGATOR_EVENT, clients_sampled=1, clip_norm=0.1)
