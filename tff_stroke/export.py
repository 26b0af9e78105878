"""Export of the global model as a TF SavedModel that stock TensorFlow serves.

Signatures:
- `serving_default`: normalised slices, float32 [batch, H, W, C] ->
  {'lesion_probability': [batch, H, W, 1]}.
- `segment_volume`: one raw volume in RAS, float32 [X, Y, Z] or [X, Y, Z, C],
  already at the training spacing -> {'lesion_probability': [X, Y, Z],
  'lesion_mask': uint8 [X, Y, Z]}. Inside the graph it repeats the training
  pipeline (data_pipelines.preprocessing): per-channel z-score over the
  foreground (after percentile clipping, if the data was prepared so), axial
  slicing, centre crop/pad to the training size, and the inverse crop/pad of
  the prediction.

Assets: privacy_report.json (the run's report, byte for byte),
preprocessing.json and model_card.md.
"""

import json
import os
import shutil
import tempfile
from typing import Optional

import tensorflow as tf

from data_pipelines import preprocessing

PRIVACY_REPORT_ASSET = 'privacy_report.json'
PREPROCESSING_ASSET = 'preprocessing.json'
MODEL_CARD_ASSET = 'model_card.md'
# Slices per model call inside segment_volume; bounds memory on large volumes.
SLICE_BATCH = 16


def _percentile(values: tf.Tensor, percent: float) -> tf.Tensor:
  """numpy.percentile's default (linear) interpolation, in float64."""
  ordered = tf.sort(tf.cast(values, tf.float64))
  last = tf.size(ordered) - 1
  position = percent / 100.0 * tf.cast(last, tf.float64)
  lower = tf.cast(tf.floor(position), tf.int32)
  upper = tf.minimum(lower + 1, last)
  fraction = position - tf.floor(position)
  low, high = tf.gather(ordered, lower), tf.gather(ordered, upper)
  return low + (high - low) * fraction


def _normalize_channel(volume: tf.Tensor, method: str) -> tf.Tensor:
  """preprocessing.normalize_volume on one [X, Y, Z] channel."""
  flat = tf.reshape(volume, [-1])
  threshold = preprocessing.FOREGROUND_FRACTION * _percentile(
      flat, preprocessing.FOREGROUND_PERCENTILE)
  values = tf.boolean_mask(flat, tf.cast(flat, tf.float64) > threshold)
  if method == 'percentile':
    low, high = (tf.cast(_percentile(values, p), tf.float32)
                 for p in preprocessing.PERCENTILE_CLIP)
    volume = tf.clip_by_value(volume, low, high)
    values = tf.clip_by_value(values, low, high)
  mean = tf.reduce_mean(values)
  std = tf.math.reduce_std(values)
  with tf.control_dependencies([tf.debugging.assert_positive(
      std, message='volume has no foreground with non-zero variance')]):
    normalized = (volume - mean) / std
  return tf.clip_by_value(normalized, -preprocessing.CLIP_SD, preprocessing.CLIP_SD)


class _SegmentationModule(tf.Module):
  """The model and its two signatures; assets attach as attributes."""

  def __init__(self, model: tf.keras.Model, threshold: float, normalization: str):
    super().__init__()
    self.model = model
    self._normalization = normalization
    self._image_size = int(model.input_shape[1])
    self._channels = int(model.input_shape[3])
    self._threshold = threshold
    self.serve = tf.function(
        self._serve,
        input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])
    self.segment_volume = tf.function(
        self._segment_volume, input_signature=[tf.TensorSpec(None, tf.float32)])

  def _serve(self, image):
    return {'lesion_probability': self.model(image, training=False)}

  def _segment_volume(self, volume):
    tf.debugging.assert_rank_in(volume, [3, 4], message='volume must be [X, Y, Z] or [X, Y, Z, C]')
    shape = tf.shape(volume)
    volume = tf.reshape(volume, tf.concat([shape[:3], [-1]], axis=0))
    tf.debugging.assert_equal(
        tf.shape(volume)[3], self._channels,
        message=f'volume must have {self._channels} channel(s)')
    normalized = tf.map_fn(lambda channel: _normalize_channel(channel, self._normalization),
                           tf.transpose(volume, [3, 0, 1, 2]))
    slices = tf.transpose(normalized, [3, 1, 2, 0])  # [Z, X, Y, C]
    fitted = tf.image.resize_with_crop_or_pad(slices, self._image_size, self._image_size)
    depth = tf.shape(fitted)[0]
    padded = tf.pad(fitted, [[0, (-depth) % SLICE_BATCH], [0, 0], [0, 0], [0, 0]])
    batches = tf.reshape(padded, [-1, SLICE_BATCH, self._image_size, self._image_size,
                                  self._channels])
    predicted = tf.map_fn(
        lambda batch: self.model(batch, training=False), batches,
        fn_output_signature=tf.TensorSpec(
            [SLICE_BATCH, self._image_size, self._image_size, 1], tf.float32))
    predicted = tf.reshape(predicted, [-1, self._image_size, self._image_size, 1])[:depth]
    restored = tf.image.resize_with_crop_or_pad(predicted, shape[0], shape[1])
    probability = tf.transpose(restored[..., 0], [1, 2, 0])
    return {'lesion_probability': probability,
            'lesion_mask': tf.cast(probability > self._threshold, tf.uint8)}


def export_saved_model(model: tf.keras.Model, export_dir: str, *,
                       privacy_report_path: Optional[str], preprocessing_record: dict,
                       model_card: str, threshold: float = 0.5) -> None:
  """Writes `model` as a SavedModel with both signatures and its assets.

  `privacy_report_path` None (a model trained without DP) leaves out the
  privacy_report.json asset.

  The folder is written aside and renamed, so `export_dir` holds either the
  previous export or the complete new one.
  """
  tmp_dir = export_dir + '.tmp'
  shutil.rmtree(tmp_dir, ignore_errors=True)
  with tempfile.TemporaryDirectory() as staging:
    preprocessing_path = os.path.join(staging, PREPROCESSING_ASSET)
    with open(preprocessing_path, 'w') as f:
      json.dump({**preprocessing_record, 'threshold': threshold}, f, indent=2)
    card_path = os.path.join(staging, MODEL_CARD_ASSET)
    with open(card_path, 'w') as f:
      f.write(model_card)
    module = _SegmentationModule(model, threshold, preprocessing_record['normalization'])
    if privacy_report_path is not None:
      report_copy = os.path.join(staging, PRIVACY_REPORT_ASSET)
      shutil.copyfile(privacy_report_path, report_copy)
      module.privacy_report = tf.saved_model.Asset(report_copy)
    module.preprocessing = tf.saved_model.Asset(preprocessing_path)
    module.model_card = tf.saved_model.Asset(card_path)
    tf.saved_model.save(module, tmp_dir, signatures={
        'serving_default': module.serve, 'segment_volume': module.segment_volume})
  shutil.rmtree(export_dir, ignore_errors=True)
  os.replace(tmp_dir, export_dir)


def read_asset(saved_model_dir: str, name: str) -> str:
  with open(os.path.join(saved_model_dir, 'assets', name)) as f:
    return f.read()
