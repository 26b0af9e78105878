"""Exports a run's model from any of its checkpoints as a SavedModel.

  python -m experiments.export_model --run_dir=RUNS/NAME --output_dir=DIR [--round=K]

The export carries the run's privacy report unchanged (it bounds every model
the run released), preprocessing.json and a model card with the evaluation
of the exported weights on the held-out subjects.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

from data_pipelines import conversion
from tff_stroke import execution
from tff_stroke import experiment
from tff_stroke import run_export

_RUN_DIR = flags.DEFINE_string('run_dir', None, 'Run folder (RUNS/NAME).')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Folder the SavedModel is written to.')
_ROUND = flags.DEFINE_integer('round', None, 'Checkpoint round to export; default the last.')
flags.mark_flags_as_required(['run_dir', 'output_dir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  run_dir = _RUN_DIR.value
  rounds = run_export.finished_report(run_dir)['rounds_completed']
  with execution.local_cpp_context():
    model, round_num = experiment.load_checkpoint_model(run_dir, _ROUND.value)
  config = experiment.load_config(run_dir)
  try:
    manifest = conversion.load_manifest(config.data_dir)
    evaluation_result = run_export.evaluate_holdout(model, config.data_dir, manifest)
  except FileNotFoundError as e:
    print(f'not evaluated (the prepared data is not there): {e}')
    evaluation_result = None
  run_export.export_run_model(
      run_dir, model, evaluation_result, _OUTPUT_DIR.value,
      provenance=f'{experiment.ALGORITHM_NAMES[config.aggregator]}, global weights '
                 f'after round {round_num} of {rounds}')
  print(f'SavedModel of round {round_num}: {_OUTPUT_DIR.value} '
        '(signatures serving_default and segment_volume; model card in assets/)')


if __name__ == '__main__':
  app.run(main)
