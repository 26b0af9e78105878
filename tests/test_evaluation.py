"""Volume-level Dice per held-out subject."""

import numpy as np
import pytest
import tensorflow as tf

from tff_stroke import evaluation


def test_dice_from_counts():
  assert evaluation.dice_from_counts(2, 1, 1) == pytest.approx(4 / 6)
  assert evaluation.dice_from_counts(0, 0, 0) == 1.0
  assert evaluation.dice_from_counts(0, 3, 0) == 0.0


def test_evaluate_subjects_pools_slices_per_subject():
  # The "model" predicts the image itself; images are set so that subject a
  # is perfect and subject b finds 1 of its 3 lesion pixels plus 1 false one.
  masks = np.zeros([3, 4, 4, 1], np.float32)
  images = np.zeros_like(masks)
  masks[0, 0, :2] = 1.0
  images[0] = masks[0]
  masks[1, 1, :2] = 1.0
  masks[2, 2, 0] = 1.0
  images[1, 1, 0] = 1.0
  images[2, 3, 3] = 1.0
  dataset = tf.data.Dataset.from_tensor_slices({
      'image': images, 'mask': masks,
      'subject_id': [b'a', b'b', b'b'], 'site': [b'R001', b'R002', b'R002']})
  identity = tf.keras.Sequential([tf.keras.layers.Lambda(lambda x: x)])
  result = evaluation.evaluate_subjects(identity, dataset, batch_size=2)
  assert result['per_subject']['a']['dice'] == 1.0
  # b: TP=1, FP=1, FN=2 -> 2/(2+1+2).
  assert result['per_subject']['b']['dice'] == pytest.approx(0.4)
  assert result['per_subject']['b']['lesion_voxels'] == 3
  assert result['mean_dice'] == pytest.approx(0.7)
