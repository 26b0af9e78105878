"""From a run folder to its SavedModel, evaluation and Markdown summary.

Used at the end of a run and by `experiments.export_model`, which exports
any checkpoint of a finished run again.
"""

import json
import os
from typing import Optional

import tensorflow as tf

from data_pipelines import client_data as client_data_lib
from tff_stroke import evaluation
from tff_stroke import export
from tff_stroke import model_card

PREPROCESSING_NAME = 'preprocessing.json'
TRAINING_DATA_NAME = 'training_data.json'
EVALUATION_NAME = 'evaluation.json'
CHECKPOINTS_NAME = 'checkpoints'
REPORT_PATH = os.path.join('privacy', 'report.json')


def _read_json(run_dir: str, name: str) -> dict:
  with open(os.path.join(run_dir, name)) as f:
    return json.load(f)


def finished_report(run_dir: str) -> dict:
  """The privacy report of a finished run.

  Raises:
    FileNotFoundError: the run has not written it yet.
  """
  path = os.path.join(run_dir, REPORT_PATH)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: the run has no privacy report yet; '
                            'finish (resume) the run before exporting')
  return _read_json(run_dir, REPORT_PATH)


EVALUATED_SPLITS = {'holdout': 'held_out_subjects', 'test_sites': 'held_out_sites'}


def evaluate_holdout(model: tf.keras.Model, data_dir: str, manifest: dict) -> dict:
  """Per-subject, per-site and overall volume metrics of the held-out subjects
  of the training sites ('held_out_subjects') and, when the conversion held
  sites out, of those sites ('held_out_sites')."""
  return {
      name: evaluation.evaluate_subjects(
          model, client_data_lib.split_dataset(data_dir, manifest, split),
          spacing_mm=manifest['preprocessing']['spacing_mm'])
      for split, name in EVALUATED_SPLITS.items() if split in manifest
  }


def evaluation_summary(evaluation_result: dict) -> dict:
  """The overall figures a run's summary.json carries."""
  overall = evaluation_result['held_out_subjects']['overall']
  sites = evaluation_result.get('held_out_sites', {}).get('overall')
  return {'holdout_dice': overall['dice'], 'holdout_lesion_f1': overall['lesion_f1'],
          'holdout_subjects': overall['num_subjects'],
          'held_out_sites_dice': sites and sites['dice'],
          'held_out_sites_subjects': sites and sites['num_subjects']}


def export_run_model(run_dir: str, model: tf.keras.Model, evaluation_result: Optional[dict],
                     output_dir: str, *, provenance: str, private: bool = True) -> None:
  """Exports `model` with the run's privacy report (if `private`) and a model card.

  Raises:
    FileNotFoundError: a private run without its privacy report.
  """
  report = finished_report(run_dir) if private else None
  preprocessing_record = _read_json(run_dir, PREPROCESSING_NAME)
  card = model_card.render_model_card(
      config=_read_json(run_dir, 'config.json'), report=report,
      evaluation=evaluation_result and evaluation_result['held_out_subjects'],
      training_data=_read_json(run_dir, TRAINING_DATA_NAME), provenance=provenance,
      preprocessing=preprocessing_record)
  export.export_saved_model(model, output_dir,
                            privacy_report_path=os.path.join(run_dir, REPORT_PATH)
                            if private else None,
                            preprocessing_record=preprocessing_record, model_card=card)


def write_run_summary_markdown(run_dir: str, facts: list[str], evaluation_result: dict) -> None:
  """summary.md: `facts` (one bullet each), the per-site evaluation, the outputs."""
  lines = [f'# Run {os.path.basename(run_dir)}', '', *[f'- {fact}' for fact in facts], '',
           '## Held-out subjects (volume metrics, mean per site)', '',
           *evaluation.markdown_table(evaluation_result['held_out_subjects']), '']
  if 'held_out_sites' in evaluation_result:
    lines += ['## Held-out sites (volume metrics, mean per site)', '',
              *evaluation.markdown_table(evaluation_result['held_out_sites']), '']
  lines += ['## Outputs', '']
  for name in sorted(os.listdir(run_dir)):
    if not name.startswith('summary.'):
      lines.append(f'- {name}/' if os.path.isdir(os.path.join(run_dir, name)) else f'- {name}')
  lines += ['- summary.json, summary.md']
  with open(os.path.join(run_dir, 'summary.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
