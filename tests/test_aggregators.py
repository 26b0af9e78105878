"""Each aggregator option runs a real TFF round, and the ledger records what ran.

A small U-Net (depth 2, 4 filters) on 16x16 slices keeps each compile short.
"""

import math

import dp_accounting
import numpy as np
import pytest
import tensorflow as tf

from tff_stroke import accounting
from tff_stroke import execution
from tff_stroke import experiment
from tff_stroke import ledger as ledger_lib
from tff_stroke import training_loop

pytestmark = pytest.mark.e2e

IMAGE_SIZE = 16
CLIENTS = [f'c{i}' for i in range(6)]


def _dataset(client_id: str, round_num: int) -> tf.data.Dataset:
  rng = np.random.default_rng(CLIENTS.index(client_id) * 7 + round_num)
  images = rng.normal(size=(8, IMAGE_SIZE, IMAGE_SIZE, 1)).astype(np.float32)
  masks = (images > 1.0).astype(np.float32)
  return tf.data.Dataset.from_tensor_slices((images, masks)).batch(4)


@pytest.fixture(scope='module', autouse=True)
def _context():
  with execution.local_cpp_context():
    yield


@pytest.mark.parametrize('aggregator,sampling,noise,event_type,inner_z', [
    ('none', 'poisson', 0.0, dp_accounting.NonPrivateDpEvent, None),
    ('dp_fixed', 'poisson', 0.8, dp_accounting.PoissonSampledDpEvent, 0.8),
    # Uniform sampling is replace-one: the sampled Gaussian has z / 2.
    ('dp_adaptive', 'uniform', 0.2, dp_accounting.SampledWithoutReplacementDpEvent, 0.1),
    ('dp_ftrl', 'shuffled', 1.0, dp_accounting.SingleEpochTreeAggregationDpEvent, 1.0),
])
def test_aggregator_runs_rounds_and_records_its_event(
    tmp_path, aggregator, sampling, noise, event_type, inner_z):
  config = experiment.ExperimentConfig(
      data_dir='unused', root_output_dir=str(tmp_path), experiment_name='agg',
      total_rounds=2, clients_per_round=3.0, noise_multiplier=noise, delta=1e-3,
      aggregator=aggregator, sampling=sampling, clipped_count_stddev=0.5,
      l2_norm_clip=0.5, base_filters=4, unet_depth=2, seed=1,
      server_optimizer='sgd', server_learning_rate=1.0)
  sampler = experiment.validate(config, CLIENTS)
  process = experiment.build_learning_process(config, IMAGE_SIZE)
  initial = process.initialize()
  ledger = ledger_lib.PrivacyLedger(str(tmp_path / 'ledger.json'))
  state, _ = training_loop.run_rounds(
      process, initial, sampler=sampler, client_input=_dataset, total_rounds=2,
      ledger=ledger, metrics_path=str(tmp_path / 'metrics.csv'),
      aggregation=config.aggregation(), delta=config.delta, log=lambda _: None)
  assert [e['round'] for e in ledger.entries] == [1, 2]
  before = process.get_model_weights(initial).trainable
  after = process.get_model_weights(state).trainable
  assert any(not np.allclose(a, b) for a, b in zip(before, after))
  events = ledger.round_events()
  assert len(events) == 2 and all(type(e) is event_type for e in events)
  if inner_z is not None:
    gaussian = getattr(events[0], 'event', events[0])
    assert gaussian.noise_multiplier == pytest.approx(inner_z, rel=1e-6)
  eps_rdp, _ = accounting.epsilon_rdp(events, config.delta)
  assert math.isinf(eps_rdp) == (aggregator == 'none')
