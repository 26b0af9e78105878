"""Resampling, normalisation, crop/pad and slicing on small known volumes."""

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import preprocessing


def test_zscore_uses_foreground_only():
  volume = np.zeros((4, 4, 4), np.float32)
  volume[1:3, 1:3, 1:3] = [[[10, 20], [10, 20]], [[10, 20], [10, 20]]]
  foreground = volume > 0
  normalized = preprocessing.zscore_normalize(volume, foreground)
  # Foreground values 10 and 20: mean 15, std 5.
  assert normalized[1, 1, 1] == pytest.approx(-1.0)
  assert normalized[1, 1, 2] == pytest.approx(1.0)
  assert normalized[0, 0, 0] == pytest.approx(-3.0)


def test_zscore_clips_and_refuses_flat_volumes():
  volume = np.ones((10, 10, 10), np.float32)
  volume[0, 0, 0] = 1000.0
  assert preprocessing.zscore_normalize(volume, volume > 0).max() == preprocessing.CLIP_SD
  with pytest.raises(ValueError, match='variance'):
    preprocessing.zscore_normalize(np.ones((3, 3, 3)), np.ones((3, 3, 3), bool))


def test_crop_or_pad_matches_tensorflow_and_keeps_alignment():
  # 40 rows are cropped to 32 and 20 columns padded to 32; a cube lesion
  # keeps its place relative to the image.
  mask = np.zeros((40, 20, 2), np.uint8)
  mask[10:14, 5:9, :] = 1
  image = mask.astype(np.float32) * 5.0 + 1.0
  fitted_image = preprocessing.crop_or_pad_in_plane(image, 32)
  fitted_mask = preprocessing.crop_or_pad_in_plane(mask, 32)
  assert fitted_image.shape == fitted_mask.shape == (32, 32, 2)
  rows, cols = np.nonzero(fitted_mask[:, :, 0])
  assert (rows.min(), rows.max(), cols.min(), cols.max()) == (6, 9, 11, 14)
  np.testing.assert_array_equal(fitted_image == 6.0, fitted_mask == 1)
  slices = np.transpose(image, (2, 0, 1))[..., None]
  reference = tf.image.resize_with_crop_or_pad(slices, 32, 32).numpy()[..., 0]
  np.testing.assert_array_equal(np.transpose(reference, (1, 2, 0)), fitted_image)


def test_resize_there_and_back_keeps_the_grid():
  volume = np.zeros((30, 24, 18), np.float32)
  volume[10:20, 8:16, 6:12] = 1.0
  shape = preprocessing.shape_at_spacing(volume.shape, (1.0, 1.0, 1.0), 2.0)
  assert shape == (15, 12, 9)
  coarse = preprocessing.resize_to_shape(volume, shape, order=0)
  np.testing.assert_array_equal(coarse[5:10, 4:8, 3:6], 1.0)
  assert coarse.sum() == 5 * 4 * 3
  back = preprocessing.resize_to_shape(coarse, volume.shape, order=0)
  np.testing.assert_array_equal(back, volume)


def test_brain_slice_indices():
  foreground = np.zeros((10, 10, 5), bool)
  foreground[:, :, 1] = True
  foreground[0, 0, 3] = True  # 1% of the slice: kept at the threshold
  np.testing.assert_array_equal(preprocessing.brain_slice_indices(foreground), [1, 3])


@pytest.mark.parametrize('method', preprocessing.NORMALIZATIONS)
def test_in_graph_normalisation_matches_the_pipeline(method):
  from tff_stroke import export  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(4)
  volume = np.zeros((20, 18, 16), np.float32)
  volume[4:16, 3:15, 2:14] = rng.gamma(4.0, 100.0, size=(12, 12, 12))
  volume[10, 10, 10] = 1e5  # A hot voxel: percentile clipping tames it.
  expected, _ = preprocessing.normalize_volume(volume, method)
  in_graph = export._normalize_channel(tf.constant(volume), method).numpy()  # pylint: disable=protected-access
  np.testing.assert_allclose(in_graph, expected, atol=1e-4)
  if method == 'percentile':
    assert expected[10, 10, 10] < preprocessing.CLIP_SD
