"""Volume-level Dice on held-out subjects.

Slices are grouped back by subject; each subject's Dice is computed from the
true/false positive counts over all its slices (a volume Dice), then averaged
over subjects. A subject with no lesion and no predicted lesion scores 1.
"""

import collections

import numpy as np
import tensorflow as tf


def dice_from_counts(true_positives: float, false_positives: float,
                     false_negatives: float) -> float:
  denominator = 2 * true_positives + false_positives + false_negatives
  return 1.0 if denominator == 0 else 2 * true_positives / denominator


def evaluate_subjects(model: tf.keras.Model, dataset: tf.data.Dataset, *,
                      threshold: float = 0.5, batch_size: int = 32) -> dict:
  """Per-subject Dice on a dataset of parsed slices (see data_pipelines.tfrecords).

  Returns:
    {'mean_dice': float or None, 'num_subjects': int,
     'per_subject': {subject_id: {'site', 'dice', 'lesion_voxels'}}}
  """
  counts = collections.defaultdict(lambda: np.zeros(3))
  sites = {}
  for batch in dataset.batch(batch_size):
    predicted = model(batch['image'], training=False).numpy() > threshold
    truth = batch['mask'].numpy() > 0.5
    for i, subject in enumerate(batch['subject_id'].numpy()):
      subject = subject.decode()
      sites[subject] = batch['site'][i].numpy().decode()
      counts[subject] += (
          np.sum(predicted[i] & truth[i]),
          np.sum(predicted[i] & ~truth[i]),
          np.sum(~predicted[i] & truth[i]))
  per_subject = {
      subject: {'site': sites[subject], 'dice': dice_from_counts(*c),
                'lesion_voxels': int(c[0] + c[2])}
      for subject, c in sorted(counts.items())
  }
  dices = [s['dice'] for s in per_subject.values()]
  return {'mean_dice': float(np.mean(dices)) if dices else None,
          'num_subjects': len(dices), 'per_subject': per_subject}
