"""The centralised reference: the same U-Net trained on the pooled data.

It is what federation and privacy are measured against: the same model,
preprocessing and evaluation, with no federation and no noise. Writes into
ROOT/NAME: config.json, preprocessing.json, training_data.json, metrics.csv
(one row per epoch), evaluation.json, saved_model/ (no privacy report: it is
not private), summary.md and, last, summary.json. An unfinished run starts
over; a finished one is not run again.
"""

import csv
import dataclasses
import os
import time
from collections.abc import Callable

import tensorflow as tf

from data_pipelines import client_data as client_data_lib
from data_pipelines import conversion
from data_pipelines import json_files
from tff_stroke import model_card
from tff_stroke import models
from tff_stroke import run_export
from tff_stroke import run_folder


KERAS_OPTIMIZERS = {
    'sgd': tf.keras.optimizers.SGD,
    'sgdm': lambda learning_rate: tf.keras.optimizers.SGD(learning_rate, momentum=0.9),
    'adam': tf.keras.optimizers.Adam,
}


@dataclasses.dataclass(frozen=True)
class CentralizedConfig:
  """Every setting of a centralised run; written to config.json."""
  data_dir: str
  root_output_dir: str
  experiment_name: str
  epochs: int = 20
  batch_size: int = 8
  optimizer: str = 'adam'
  learning_rate: float = 0.003
  base_filters: int = 8
  unet_depth: int = 3
  seed: int = 0


def run_centralized(config: CentralizedConfig, log: Callable[[str], None] = print) -> dict:
  """Trains on the pooled training clients, evaluates and exports; returns the summary.

  Raises:
    FileExistsError: the run folder holds another run.
    ValueError: a setting that cannot run.
  """
  if config.epochs < 1:
    raise ValueError(f'epochs must be >= 1. Found {config.epochs}.')
  if config.optimizer not in KERAS_OPTIMIZERS:
    raise ValueError(f'optimizer must be one of {tuple(KERAS_OPTIMIZERS)}. '
                     f'Found {config.optimizer!r}.')
  run_dir = os.path.join(config.root_output_dir, config.experiment_name)
  manifest = conversion.load_manifest(config.data_dir)
  record = {**dataclasses.asdict(config), 'training': 'centralized'}
  if run_folder.open_run_folder(run_dir, record, resume=True) == run_folder.FINISHED:
    log(f'{run_dir}: already finished; nothing to run')
    return run_folder.read_summary(run_dir)
  json_files.write_json_atomically(
      manifest['preprocessing'], os.path.join(run_dir, run_export.PREPROCESSING_NAME), indent=2)
  json_files.write_json_atomically(
      model_card.training_data_summary(manifest),
      os.path.join(run_dir, run_export.TRAINING_DATA_NAME), indent=2)

  tf.keras.utils.set_random_seed(config.seed)
  model = models.build_unet(manifest['image_size'],
                            channels=client_data_lib.num_channels(manifest),
                            base_filters=config.base_filters,
                            depth=config.unet_depth)
  model.compile(KERAS_OPTIMIZERS[config.optimizer](config.learning_rate),
                loss=models.DiceBCELoss(), metrics=[models.PooledDice()])
  pooled = (client_data_lib.pooled_dataset(config.data_dir, manifest)
            .map(lambda s: (s['image'], s['mask'])).cache())
  start = time.monotonic()
  with open(os.path.join(run_dir, 'metrics.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=('epoch', 'loss', 'train_pooled_dice', 'seconds'))
    writer.writeheader()
    for epoch in range(1, config.epochs + 1):
      epoch_start = time.monotonic()
      history = model.fit(pooled.shuffle(4096, seed=config.seed * 100003 + epoch)
                          .batch(config.batch_size), verbose=0)
      row = {'epoch': epoch, 'loss': history.history['loss'][0],
             'train_pooled_dice': history.history['pooled_dice'][0],
             'seconds': round(time.monotonic() - epoch_start, 3)}
      writer.writerow(row)
      f.flush()
      log(f'epoch {epoch}/{config.epochs}: loss {row["loss"]:.4f}, '
          f'pooled Dice {row["train_pooled_dice"]:.3f}, {row["seconds"]:.1f}s')
  training_seconds = time.monotonic() - start

  log('evaluating held-out subjects and exporting the SavedModel...')
  evaluation_result = run_export.evaluate_holdout(model, config.data_dir, manifest)
  json_files.write_json_atomically(
      evaluation_result, os.path.join(run_dir, run_export.EVALUATION_NAME), indent=2)
  saved_model_dir = os.path.join(run_dir, 'saved_model')
  run_export.export_run_model(
      run_dir, model, evaluation_result, saved_model_dir, private=False,
      provenance=f'Centralised training on pooled data, {config.epochs} epochs')
  summary = {
      'run_dir': run_dir, 'report': None, 'saved_model': saved_model_dir,
      'epsilon_rdp': None, 'epsilon_pld': None, 'delta': None,
      **run_export.evaluation_summary(evaluation_result), 'epochs': config.epochs,
      'training_seconds': training_seconds}
  run_export.write_run_summary_markdown(run_dir, [
      f'Centralised training on the pooled training clients: {config.epochs} epochs, '
      f'{training_seconds:.0f} s',
      'Not differentially private: the reference for what federation and privacy cost',
  ], evaluation_result)
  run_folder.write_summary(run_dir, summary)
  return summary
