"""Normalisation, in-plane fitting and slicing on small known volumes."""

import numpy as np
import pytest

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


def test_fit_in_plane_keeps_image_and_mask_aligned():
  # An 8 x 16 x 2 volume with a known cube lesion; fitted to 32 x 32.
  mask = np.zeros((8, 16, 2), np.uint8)
  mask[2:6, 4:8, :] = 1
  image = mask.astype(np.float32) * 5.0
  fitted_image = preprocessing.fit_in_plane(image, 32, order=1)
  fitted_mask = preprocessing.fit_in_plane(mask, 32, order=0)
  assert fitted_image.shape == fitted_mask.shape == (32, 32, 2)
  # Longer side 16 -> 32 (x2): the 8 rows become 16, padded by 8 above.
  rows, cols = np.nonzero(fitted_mask[:, :, 0])
  assert (rows.min(), rows.max(), cols.min(), cols.max()) == (12, 19, 8, 15)
  assert fitted_image[rows, cols, 0].min() > 2.5  # lesion bright where mask is 1


def test_brain_slice_indices():
  foreground = np.zeros((10, 10, 5), bool)
  foreground[:, :, 1] = True
  foreground[0, 0, 3] = True  # 1% of the slice: kept at the threshold
  np.testing.assert_array_equal(preprocessing.brain_slice_indices(foreground), [1, 3])
