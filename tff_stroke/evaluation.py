"""Evaluation on held-out subjects: slices are put back into volumes first.

A subject's slices (parsed TFRecords, see data_pipelines.tfrecords) are
stacked by slice index into a volume; metrics are then computed per volume
(see segmentation_metrics) and summarised per site. No metric is averaged
over slices.
"""

import collections

import numpy as np
import tensorflow as tf

from tff_stroke import segmentation_metrics


def predict_volumes(model: tf.keras.Model, dataset: tf.data.Dataset, *,
                    batch_size: int = 32) -> dict:
  """{subject_id: (site, probability volume, true mask volume)}, [H, W, Z].

  Slice indices absent from the data (non-brain slices) are left at zero.
  """
  slices = collections.defaultdict(list)
  sites = {}
  for batch in dataset.batch(batch_size):
    probabilities = model(batch['image'], training=False).numpy()[..., 0]
    masks = batch['mask'].numpy()[..., 0]
    for i, subject in enumerate(batch['subject_id'].numpy()):
      subject = subject.decode()
      sites[subject] = batch['site'][i].numpy().decode()
      slices[subject].append((int(batch['slice_index'][i]), probabilities[i], masks[i]))
  volumes = {}
  for subject, items in sorted(slices.items()):
    depth = max(index for index, _, _ in items) + 1
    probability = np.zeros(items[0][1].shape + (depth,), np.float32)
    truth = np.zeros_like(probability)
    for index, p, m in items:
      probability[..., index], truth[..., index] = p, m
    volumes[subject] = (sites[subject], probability, truth)
  return volumes


def evaluate_subjects(model: tf.keras.Model, dataset: tf.data.Dataset, *,
                      spacing_mm: float, threshold: float = 0.5,
                      batch_size: int = 32) -> dict:
  """Per-subject volume metrics and their per-site and overall means.

  Returns:
    {'threshold', 'voxel_volume_ml', 'overall': {...}, 'per_site': {site:
     {...}}, 'per_subject': {subject_id: {'site', metrics...}}}, with the
    metrics of segmentation_metrics.METRIC_NAMES.
  """
  voxel_volume_ml = spacing_mm ** 3 / 1000.0
  per_subject = {
      subject: {'site': site, **segmentation_metrics.subject_metrics(
          probability > threshold, truth > 0.5, voxel_volume_ml)}
      for subject, (site, probability, truth) in predict_volumes(
          model, dataset, batch_size=batch_size).items()
  }
  return {'threshold': threshold, 'voxel_volume_ml': voxel_volume_ml,
          **segmentation_metrics.summarize(per_subject), 'per_subject': per_subject}


def markdown_table(result: dict) -> list[str]:
  """Markdown rows of per-site and overall means of one evaluation set."""
  names = segmentation_metrics.METRIC_NAMES
  lines = [f'| Site | Subjects | {" | ".join(names)} |', '|---|---|' + '---|' * len(names)]
  for site, summary in {**result['per_site'], '**all**': result['overall']}.items():
    values = ' | '.join('n/a' if summary[m] is None else f'{summary[m]:.3f}' for m in names)
    lines.append(f'| {site} | {summary["num_subjects"]} | {values} |')
  return lines
