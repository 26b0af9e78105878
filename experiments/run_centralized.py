"""Trains the same U-Net on the pooled training data: the non-federated reference.

  python -m experiments.run_centralized --data_dir=OUT --root_output_dir=runs \
      --experiment_name=central --epochs=20
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tff_stroke import centralized

_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Folder written by data_pipelines.prepare.')
_ROOT_OUTPUT_DIR = flags.DEFINE_string('root_output_dir', 'runs', 'Parent of run folders.')
_EXPERIMENT_NAME = flags.DEFINE_string('experiment_name', None, 'Run folder name.')
_EPOCHS = flags.DEFINE_integer('epochs', 20, 'Passes over the pooled training slices.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 8, 'Batch size.')
_OPTIMIZER = flags.DEFINE_enum('optimizer', 'adam', list(centralized.KERAS_OPTIMIZERS),
                               'Optimizer.')
_LEARNING_RATE = flags.DEFINE_float('learning_rate', 0.003, 'Learning rate.')
_BASE_FILTERS = flags.DEFINE_integer('base_filters', 8, 'U-Net filters at the first level.')
_UNET_DEPTH = flags.DEFINE_integer('unet_depth', 3, 'U-Net down-sampling steps.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds shuffling and initial weights.')
flags.mark_flags_as_required(['data_dir', 'experiment_name'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  summary = centralized.run_centralized(centralized.CentralizedConfig(
      data_dir=_DATA_DIR.value, root_output_dir=_ROOT_OUTPUT_DIR.value,
      experiment_name=_EXPERIMENT_NAME.value, epochs=_EPOCHS.value,
      batch_size=_BATCH_SIZE.value, optimizer=_OPTIMIZER.value,
      learning_rate=_LEARNING_RATE.value, base_filters=_BASE_FILTERS.value,
      unet_depth=_UNET_DEPTH.value,
      seed=_SEED.value))
  print(f'Run folder:  {summary["run_dir"]} (summary.md)')
  print(f'SavedModel:  {summary["saved_model"]} (not differentially private)')
  print(f'Held-out:    Dice {summary["holdout_dice"]:.3f}, lesion-wise F1 '
        f'{summary["holdout_lesion_f1"]:.3f} (volume metrics, mean over '
        f'{summary["holdout_subjects"]} subjects)')
  if summary['held_out_sites_dice'] is not None:
    print(f'Held-out sites: Dice {summary["held_out_sites_dice"]:.3f} '
          f'({summary["held_out_sites_subjects"]} subjects)')


if __name__ == '__main__':
  app.run(main)
