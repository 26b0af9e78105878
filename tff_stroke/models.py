"""A small 2D U-Net with GroupNorm, its Dice+BCE loss and a pooled Dice metric.

GroupNorm keeps no batch statistics, so nothing but the weights leaves a
client (BatchNorm's moving averages would be unclipped, un-noised updates).
"""

import tensorflow as tf


def build_unet(image_size: int, *, channels: int = 1, base_filters: int = 8,
               depth: int = 3, groups: int = 4) -> tf.keras.Model:
  """U-Net (Ronneberger et al. 2015) returning per-pixel lesion probability.

  Args:
    image_size: side of the square input; must be divisible by 2**depth.
    channels: input channels (modalities).
    base_filters: filters of the first level; doubled at each level.
    depth: number of down-sampling steps.
    groups: GroupNorm groups; must divide base_filters.
  """
  if image_size % (2**depth):
    raise ValueError(f'image_size must be divisible by 2**depth = {2**depth}. '
                     f'Found {image_size}.')
  if base_filters % groups:
    raise ValueError(f'groups ({groups}) must divide base_filters ({base_filters}).')
  inputs = tf.keras.Input(shape=(image_size, image_size, channels), name='image')
  x = inputs
  skips = []
  for level in range(depth):
    x = _conv_block(x, base_filters * 2**level, groups)
    skips.append(x)
    x = tf.keras.layers.MaxPool2D()(x)
  x = _conv_block(x, base_filters * 2**depth, groups)
  for level in reversed(range(depth)):
    x = tf.keras.layers.Conv2DTranspose(base_filters * 2**level, 2, strides=2)(x)
    x = tf.keras.layers.Concatenate()([x, skips[level]])
    x = _conv_block(x, base_filters * 2**level, groups)
  outputs = tf.keras.layers.Conv2D(1, 1, activation='sigmoid', name='lesion')(x)
  return tf.keras.Model(inputs, outputs, name='unet')


def _conv_block(x, filters, groups):
  for _ in range(2):
    x = tf.keras.layers.Conv2D(filters, 3, padding='same', use_bias=False)(x)
    x = tf.keras.layers.GroupNormalization(groups=groups)(x)
    x = tf.keras.layers.ReLU()(x)
  return x


class DiceBCELoss(tf.keras.losses.Loss):
  """Soft Dice loss over the batch plus binary cross-entropy."""

  def __init__(self, smooth: float = 1.0, name: str = 'dice_bce', **kwargs):
    super().__init__(name=name, **kwargs)
    self.smooth = smooth

  def call(self, y_true, y_pred):
    y_true = tf.cast(y_true, y_pred.dtype)
    intersection = tf.reduce_sum(y_true * y_pred)
    total = tf.reduce_sum(y_true) + tf.reduce_sum(y_pred)
    dice_loss = 1.0 - (2.0 * intersection + self.smooth) / (total + self.smooth)
    bce = tf.reduce_mean(tf.keras.losses.binary_crossentropy(y_true, y_pred))
    return dice_loss + bce

  def get_config(self):
    return {**super().get_config(), 'smooth': self.smooth}


class PooledDice(tf.keras.metrics.Metric):
  """Dice of thresholded predictions from counts pooled over all pixels seen."""

  def __init__(self, threshold: float = 0.5, name: str = 'pooled_dice', **kwargs):
    super().__init__(name=name, **kwargs)
    self.threshold = threshold
    self.true_positives = self.add_weight('true_positives', initializer='zeros')
    self.false_positives = self.add_weight('false_positives', initializer='zeros')
    self.false_negatives = self.add_weight('false_negatives', initializer='zeros')

  def update_state(self, y_true, y_pred, sample_weight=None):
    del sample_weight
    truth = tf.cast(y_true > 0.5, tf.float32)
    predicted = tf.cast(y_pred > self.threshold, tf.float32)
    self.true_positives.assign_add(tf.reduce_sum(truth * predicted))
    self.false_positives.assign_add(tf.reduce_sum((1 - truth) * predicted))
    self.false_negatives.assign_add(tf.reduce_sum(truth * (1 - predicted)))

  def result(self):
    denominator = 2 * self.true_positives + self.false_positives + self.false_negatives
    return tf.math.divide_no_nan(2 * self.true_positives, denominator)

  def get_config(self):
    return {**super().get_config(), 'threshold': self.threshold}
