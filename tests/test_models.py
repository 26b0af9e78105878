"""The U-Net, its loss and the pooled Dice metric."""

import numpy as np
import pytest
import tensorflow as tf

from tff_stroke import models


def test_unet_shape_and_groupnorm_only():
  model = models.build_unet(32, base_filters=8, depth=3)
  assert model(tf.zeros([2, 32, 32, 1])).shape == (2, 32, 32, 1)
  layer_types = {type(layer).__name__ for layer in model.layers}
  assert 'GroupNormalization' in layer_types
  assert not any('BatchNormalization' in t for t in layer_types)
  assert not model.non_trainable_weights


def test_unet_rejects_bad_sizes():
  with pytest.raises(ValueError, match='divisible'):
    models.build_unet(36, depth=3)
  with pytest.raises(ValueError, match='groups'):
    models.build_unet(32, base_filters=6, groups=4)


def test_dice_bce_loss_values():
  loss = models.DiceBCELoss(smooth=0.0)
  truth = np.zeros([1, 4, 4, 1], np.float32)
  truth[0, :2, :2] = 1.0
  near_perfect = np.clip(truth, 1e-7, 1 - 1e-7)
  assert float(loss(truth, near_perfect)) == pytest.approx(0.0, abs=1e-4)
  # Constant 0.5: Dice = 2*2/(4+8) = 1/3, BCE = ln 2.
  half = np.full_like(truth, 0.5)
  assert float(loss(truth, half)) == pytest.approx(2 / 3 + np.log(2), rel=1e-4)


def test_pooled_dice_counts_over_batches():
  metric = models.PooledDice()
  # Batch 1: TP=2, FP=1, FN=0. Batch 2: TP=0, FP=0, FN=1. Dice = 4/(4+1+1).
  metric.update_state(tf.constant([[1.0, 1.0, 0.0]]), tf.constant([[0.9, 0.8, 0.7]]))
  metric.update_state(tf.constant([[1.0, 0.0, 0.0]]), tf.constant([[0.1, 0.2, 0.3]]))
  assert float(metric.result()) == pytest.approx(4 / 6)
