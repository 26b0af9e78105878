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
from tff_stroke import aggregation
from tff_stroke import budget as budget_lib
from tff_stroke import ledger as ledger_lib
from tff_stroke import sampling
from tff_stroke import training_loop

AGGREGATOR_EVENT = dp_accounting.ComposedDpEvent([
    dp_accounting.GaussianDpEvent(1.2), dp_accounting.GaussianDpEvent(4.0)])


EFFECTIVE_Z = (1.2**-2 + 4.0**-2) ** -0.5
# Adaptive clipping whose expected event has the same effective multiplier.
ADAPTIVE = aggregation.Aggregation('dp_adaptive', EFFECTIVE_Z, 3.0, l2_norm_clip=0.1,
                                   clipped_count_stddev=2.0)


class StandInProcess:
  """Returns aggregator state and metrics as TFF's process does.

  `dp_event` None stands for plain FedAvg (no DP state, no clip metric).
  """

  def __init__(self, dp_event=AGGREGATOR_EVENT, adaptive=True):
    self.calls = []
    self.clients = []
    self._dp_event = dp_event
    self._adaptive = adaptive

  def next(self, state, datasets):
    self.calls.append(len(datasets))
    self.clients.append([client for client, _ in datasets])
    metrics = {'client_work': {'train': {'loss': 1.0, 'pooled_dice': 0.5,
                                         'num_examples': 8 * len(datasets)}},
               'aggregator': {}}
    if self._dp_event is None:
      return types.SimpleNamespace(state=types.SimpleNamespace(aggregator={}),
                                   metrics=metrics)
    dp_state = differential_privacy.DPAggregatorState(
        query_state=None, agg_state=None,
        dp_event=self._dp_event.to_named_tuple(), is_init_state=False)
    metrics['aggregator'] = {'dp_query_metrics': (
        {'clip': 0.2 + len(self.calls)} if self._adaptive else {})}
    return types.SimpleNamespace(state=types.SimpleNamespace(aggregator={'dp': dp_state}),
                                 metrics=metrics)


def _run(tmp_path, sampler, rounds, budget=None, aggregator=ADAPTIVE, process=None):
  process = process or StandInProcess()
  ledger = ledger_lib.PrivacyLedger(str(tmp_path / 'privacy' / 'ledger.json'))
  _, reason = training_loop.run_rounds(
      process, None, sampler=sampler, client_input=lambda c, r: (c, r),
      total_rounds=rounds, ledger=ledger, metrics_path=str(tmp_path / 'metrics.csv'),
      aggregation=aggregator, delta=1e-5, budget=budget, log=lambda _: None)
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
  # The epsilon so far in each row is the RDP epsilon of the rounds up to it.
  for k, row in enumerate(rows, start=1):
    assert float(row['epsilon_rdp']) == pytest.approx(
        accounting.epsilon_rdp(ledger.round_events()[:k], 1e-5)[0])


def test_dp_ftrl_rounds_are_leaves_of_one_tree(tmp_path):
  z = 1.0
  ftrl = aggregation.Aggregation('dp_ftrl', z, 3.0, l2_norm_clip=0.5)
  sampler = sampling.ShuffledSampler([f'c{i}' for i in range(10)], 3, seed=0)
  process = StandInProcess(dp_accounting.UnsupportedDpEvent(), adaptive=False)
  _, ledger, rows, _ = _run(tmp_path, sampler, 3, aggregator=ftrl, process=process)
  seen = [c for clients in process.clients for c in clients]
  assert len(seen) == len(set(seen)) == 9  # each client in at most one round
  assert [e['clip_norm_in_force'] for e in ledger.entries] == [0.5] * 3
  assert ledger.round_events() == [
      dp_accounting.SingleEpochTreeAggregationDpEvent(z, 1)] * 3
  # A tree of 3 steps has ceil(log2(4)) = 2 levels, each client in one node per
  # level (Kairouz et al. 2021, appendix D): a Gaussian with z / sqrt(2).
  expected, _ = accounting.epsilon_rdp([dp_accounting.GaussianDpEvent(z / 2**0.5)], 1e-5)
  assert float(rows[-1]['epsilon_rdp']) == pytest.approx(expected, rel=1e-9)
  assert accounting.epsilon_pld(ledger.round_events(), 1e-5) is None


def test_fedavg_rounds_are_recorded_as_not_private(tmp_path):
  sampler = sampling.PoissonSampler([f'c{i}' for i in range(10)], 0.3, seed=0)
  process = StandInProcess(dp_event=None)
  _, ledger, rows, _ = _run(tmp_path, sampler, 2, process=process,
                            aggregator=aggregation.Aggregation('none', 0.0, 3.0))
  assert ledger.round_events() == [dp_accounting.NonPrivateDpEvent()] * 2
  assert [e['effective_noise_multiplier'] for e in ledger.entries] == [0.0, 0.0]
  assert [e['clip_norm_in_force'] for e in ledger.entries] == [None, None]
  assert rows[0]['clip_norm'] == '' and float(rows[0]['epsilon_rdp']) == float('inf')
  assert accounting.epsilon_pld(ledger.round_events(), 1e-5) == float('inf')


def test_uniform_sampler_runs_fixed_size_rounds_and_records_them(tmp_path):
  sampler = sampling.UniformSampler([f'c{i}' for i in range(10)], 3, seed=0)
  process, ledger, _, _ = _run(tmp_path, sampler, 5)
  assert process.calls == [3] * 5
  event = ledger.round_events()[0]
  assert isinstance(event, dp_accounting.SampledWithoutReplacementDpEvent)
  assert (event.source_dataset_size, event.sample_size) == (10, 3)


def test_budget_stops_before_the_round_that_would_exceed_it(tmp_path):
  sampler = sampling.PoissonSampler([f'c{i}' for i in range(10)], 0.3, seed=0)
  event = dp_accounting.PoissonSampledDpEvent(0.3, dp_accounting.GaussianDpEvent(EFFECTIVE_Z))
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


def test_clients_failing_their_check_are_left_out_and_the_round_accounted_as_sampled(tmp_path):
  sampler = sampling.AllClientsSampler(['c0', 'c1', 'c2'])
  process = StandInProcess()
  ledger = ledger_lib.PrivacyLedger(str(tmp_path / 'ledger.json'))
  lines = []
  training_loop.run_rounds(
      process, None, sampler=sampler, client_input=lambda c, r: (c, r), total_rounds=2,
      ledger=ledger, metrics_path=str(tmp_path / 'metrics.csv'), aggregation=ADAPTIVE,
      delta=1e-5, log=lines.append,
      check_clients=lambda clients, r: {'c1': 'shard missing'} if r == 2 else {})
  assert process.clients == [['c0', 'c1', 'c2'], ['c0', 'c2']]
  assert [e['clients_sampled'] for e in ledger.entries] == [3, 3]
  assert [e['clients_left_out'] for e in ledger.entries] == [{}, {'c1': 'shard missing'}]
  assert ledger.clients_left_out() == 1
  assert ledger.round_events()[0] == ledger.round_events()[1]
  assert 'round 2: client c1 left out: shard missing' in lines
  with open(tmp_path / 'metrics.csv') as f:
    assert [r['clients_left_out'] for r in csv.DictReader(f)] == ['0', '1']
