"""Prints the time of a DP-FedAvg round against plain Keras on the same slices.

  .venv/bin/python benchmarks/bench_round.py [ROUNDS]

The setting of DESIGN.md: a 118k-parameter U-Net (8 filters, depth 3) on
64x64 slices, 8 clients x 32 slices read from TFRecord files, batch 8, one
local epoch, every client in every round, adaptive clipping with zeroing.
For each way of running the rounds it prints the first round (tracing and
compiling included) and the median of the others; then the median epoch of
Keras `fit` over the same 256 slices (after a first, compiling, epoch) and
the ratio of round to epoch.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import statistics  # pylint: disable=g-import-not-at-top
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from data_pipelines import client_data as client_data_lib
from data_pipelines import tfrecords
from tff_stroke import dp_fedavg
from tff_stroke import execution
from tff_stroke import experiment
from tff_stroke import models

IMAGE_SIZE = 64
CLIENTS = 8
SLICES = 32
BATCH = 8


def _write_clients(folder: str) -> dict:
  """A manifest-like record of 8 TFRecord files of random slices with blobs."""
  rng = np.random.default_rng(0)
  clients = {}
  for c in range(CLIENTS):
    name = f'client{c}.tfrecord'
    with tf.io.TFRecordWriter(os.path.join(folder, name)) as writer:
      for s in range(SLICES):
        image = rng.normal(size=(IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
        mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        y, x = rng.integers(8, IMAGE_SIZE - 8, 2)
        mask[y - 4:y + 4, x - 4:x + 4] = 1
        image[mask > 0] -= 2.0
        writer.write(tfrecords.serialize_slice(image, mask, subject_id=f's{c}', site='R001',
                                               slice_index=s))
    clients[f'c{c}'] = {'file': name}
  return {'clients': clients, 'image_size': IMAGE_SIZE, 'compression': '',
          'preprocessing': {'channels': ['T1w']}}


def _config(**changes) -> experiment.ExperimentConfig:
  settings = dict(data_dir='unused', root_output_dir='unused', experiment_name='bench',
                  total_rounds=1, clients_per_round=float(CLIENTS), noise_multiplier=0.5,
                  delta=1e-5, sampling='all', clipped_count_stddev=1.0, l2_norm_clip=1.0,
                  base_filters=8, unet_depth=3, batch_size=BATCH,
                  client_optimizer='sgd', client_learning_rate=0.05)
  settings.update(changes)
  return experiment.ExperimentConfig(**settings)


def _python_dataset(client_data, client_id, round_num, config):
  """The client's dataset built on the coordinator and serialised into the round."""
  return (client_data.create_tf_dataset_for_client(client_id)
          .map(lambda s: (s['image'], s['mask']))
          .shuffle(1024, seed=config.seed * 100003 + round_num)
          .batch(config.batch_size))


def _time_rounds(config, client_data, rounds: int, *, in_computation: bool
                 ) -> tuple[float, float]:
  """(first round, median of the others) in seconds."""
  process = experiment.build_learning_process(config, IMAGE_SIZE)
  if in_computation:
    process = experiment.with_client_datasets(process, client_data, config)
  state = process.initialize()
  ids = sorted(client_data.client_ids)
  times = []
  for round_num in range(rounds):
    start = time.perf_counter()
    data = [experiment.client_key(c, round_num) if in_computation
            else _python_dataset(client_data, c, round_num, config) for c in ids]
    state = process.next(state, data).state
    times.append(time.perf_counter() - start)
  return times[0], statistics.median(times[1:])


def _time_keras(client_data, epochs: int) -> float:
  """Median epoch of Keras fit over the pooled slices, after a first epoch."""
  pooled = client_data.create_tf_dataset_from_all_clients().map(
      lambda s: (s['image'], s['mask'])).batch(BATCH)
  model = models.build_unet(IMAGE_SIZE, base_filters=8, depth=3)
  model.compile(optimizer=tf.keras.optimizers.SGD(0.05), loss=models.DiceBCELoss())
  times = []
  for _ in range(epochs):
    start = time.perf_counter()
    model.fit(pooled, epochs=1, verbose=0)
    times.append(time.perf_counter() - start)
  return statistics.median(times[1:])


def main():
  rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 8
  tf.keras.utils.set_random_seed(0)
  with tempfile.TemporaryDirectory() as folder:
    manifest = _write_clients(folder)
    client_data = client_data_lib.build_client_data(folder, manifest)
    params = models.build_unet(IMAGE_SIZE, base_filters=8, depth=3).count_params()
    print(f'U-Net: {params} parameters; {CLIENTS} clients x {SLICES} slices, batch {BATCH}, '
          f'{rounds} rounds per variant')
    keras_epoch = _time_keras(client_data, rounds)
    print(f'{"variant":<38} {"first round s":>13} {"median round s":>14} {"ratio":>6}')
    variants = (
        ('coordinator datasets, reduce', 'dataset_reduce', False, -1),
        ('coordinator datasets, iterator', 'dataset_iterator', False, -1),
        ('in-computation datasets, reduce', 'dataset_reduce', True, -1),
        ('in-computation datasets, iterator', 'dataset_iterator', True, -1),
        ('in-computation, iterator, calls<=cores', 'dataset_iterator', True, None),
    )
    for label, loop, in_computation, concurrency in variants:
      with execution.local_cpp_context(max_concurrent_computation_calls=concurrency):
        first, median = _time_rounds(_config(loop=loop), client_data, rounds,
                                     in_computation=in_computation)
      print(f'{label:<38} {first:13.2f} {median:14.2f} {median / keras_epoch:6.2f}',
            flush=True)
    print(f'{"Keras fit, one epoch (median)":<38} {"":>13} {keras_epoch:14.2f} {1.0:6.2f}')


if __name__ == '__main__':
  main()
