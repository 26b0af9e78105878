"""Resampling, intensity normalisation, in-plane crop/pad and axial slicing.

Image and mask always go through the same spatial operations
(`resize_to_shape`, `crop_or_pad_in_plane`); only the interpolation order
differs: linear for images, nearest for masks. The exported SavedModel's
`segment_volume` signature repeats `normalize_volume` and
`crop_or_pad_in_plane` inside the graph (see tff_stroke.export).
"""

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

# Foreground: voxels above this fraction of the FOREGROUND_PERCENTILE.
FOREGROUND_FRACTION = 0.05
FOREGROUND_PERCENTILE = 99.0
# Normalised intensities are clipped to +-CLIP_SD standard deviations.
CLIP_SD = 5.0
# 'percentile' normalisation first clips intensities to these percentiles of
# the foreground (robust to hot voxels and bias), then z-scores.
NORMALIZATIONS = ('zscore', 'percentile')
PERCENTILE_CLIP = (0.5, 99.5)
# An axial slice is kept when at least this fraction of it is foreground.
MIN_SLICE_FOREGROUND = 0.01


def resize_to_shape(volume: np.ndarray, shape: Sequence[int], *, order: int) -> np.ndarray:
  """Resamples the first three axes onto `shape`, keeping the field of view.

  Voxel edges stay aligned (scipy's grid_mode), so resizing there and back
  returns to the same physical grid.
  """
  zoom = [t / n for t, n in zip(shape, volume.shape[:3])] + [1.0] * (volume.ndim - 3)
  if all(z == 1.0 for z in zoom):
    return volume
  return ndimage.zoom(volume, zoom, order=order, grid_mode=True, mode='nearest')


def shape_at_spacing(shape: Sequence[int], spacing: Sequence[float],
                     spacing_mm: float) -> tuple[int, ...]:
  """The grid shape that covers the same field of view at `spacing_mm`."""
  return tuple(max(1, round(n * s / spacing_mm)) for n, s in zip(shape[:3], spacing[:3]))


def foreground_mask(volume: np.ndarray) -> np.ndarray:
  """Voxels brighter than FOREGROUND_FRACTION of the FOREGROUND_PERCENTILE."""
  threshold = FOREGROUND_FRACTION * np.percentile(volume, FOREGROUND_PERCENTILE)
  return volume > threshold


def zscore_normalize(volume: np.ndarray, foreground: np.ndarray) -> np.ndarray:
  """Z-scores with foreground mean and std; clipped to +-CLIP_SD.

  Raises:
    ValueError: the foreground is empty or has zero variance.
  """
  values = volume[foreground]
  if values.size == 0 or float(values.std()) == 0.0:
    raise ValueError('volume has no foreground with non-zero variance')
  normalized = (volume - values.mean()) / values.std()
  return np.clip(normalized, -CLIP_SD, CLIP_SD).astype(np.float32)


def normalize_volume(volume: np.ndarray,
                     method: str = 'zscore') -> tuple[np.ndarray, np.ndarray]:
  """Normalises one channel over its own foreground; returns (normalised, foreground).

  'zscore': z-score over the foreground; 'percentile': clip to the
  PERCENTILE_CLIP percentiles of the foreground first.
  """
  foreground = foreground_mask(volume)
  if method == 'percentile' and foreground.any():
    volume = np.clip(volume, *np.percentile(volume[foreground], PERCENTILE_CLIP))
  return zscore_normalize(volume, foreground), foreground


def normalize_channels(volume: np.ndarray,
                       method: str = 'zscore') -> tuple[np.ndarray, np.ndarray]:
  """`normalize_volume` on each channel of [X, Y, Z, C].

  Returns:
    (normalised [X, Y, Z, C], foreground of the first (reference) channel).
  """
  results = [normalize_volume(volume[..., c], method) for c in range(volume.shape[3])]
  return np.stack([normalized for normalized, _ in results], axis=-1), results[0][1]


def crop_or_pad_in_plane(volume: np.ndarray, image_size: int) -> np.ndarray:
  """Centre-crops or zero-pads axes 0 and 1 to `image_size`.

  The offsets are those of tf.image.resize_with_crop_or_pad, so the graph
  can undo them exactly.
  """
  result = volume
  for axis in (0, 1):
    n = result.shape[axis]
    if n > image_size:
      start = (n - image_size) // 2
      result = np.take(result, np.arange(start, start + image_size), axis=axis)
    elif n < image_size:
      padding = [(0, 0)] * result.ndim
      before = (image_size - n) // 2
      padding[axis] = (before, image_size - n - before)
      result = np.pad(result, padding)
  return result


def brain_slice_indices(foreground: np.ndarray) -> np.ndarray:
  """Axial indices whose foreground fraction is at least MIN_SLICE_FOREGROUND."""
  fraction = foreground.mean(axis=(0, 1))
  return np.flatnonzero(fraction >= MIN_SLICE_FOREGROUND)


def describe(image_size: int, spacing_mm: float, channels: Sequence[str],
             normalization: str = 'zscore') -> dict:
  """Every preprocessing parameter, as manifest.json and the SavedModel record it."""
  return {
      'orientation': 'RAS+ (nibabel closest canonical)',
      'spacing_mm': spacing_mm,
      'resampling': 'scipy.ndimage.zoom, grid_mode, field of view kept: '
                    'linear for images, nearest for masks',
      'channels': list(channels),
      'channel_grid': 'the first channel\'s; other channels resampled onto it (linear)',
      'normalization': normalization,
      'normalization_text': ('z-score per channel over its foreground, clipped' +
                             (f'; intensities first clipped to the {PERCENTILE_CLIP} '
                              'percentiles of the foreground' if normalization == 'percentile'
                              else '')),
      'percentile_clip': list(PERCENTILE_CLIP) if normalization == 'percentile' else None,
      'foreground_fraction': FOREGROUND_FRACTION,
      'foreground_percentile': FOREGROUND_PERCENTILE,
      'clip_sd': CLIP_SD,
      'image_size': image_size,
      'in_plane': 'centre crop or zero pad to image_size '
                  '(tf.image.resize_with_crop_or_pad offsets)',
      'slicing': 'axial',
      'min_slice_foreground': MIN_SLICE_FOREGROUND,
  }
