"""Intensity normalisation, in-plane resizing and axial slicing of volumes.

Image and mask always go through the same spatial operation
(`fit_in_plane`); only the interpolation order differs.
"""

import numpy as np
from scipy import ndimage

# Foreground: voxels above this fraction of the 99th intensity percentile.
FOREGROUND_FRACTION = 0.05
# Normalised intensities are clipped to +-CLIP_SD standard deviations.
CLIP_SD = 5.0
# An axial slice is kept when at least this fraction of it is foreground.
MIN_SLICE_FOREGROUND = 0.01


def foreground_mask(volume: np.ndarray) -> np.ndarray:
  """Voxels brighter than FOREGROUND_FRACTION of the 99th percentile."""
  threshold = FOREGROUND_FRACTION * np.percentile(volume, 99)
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


def fit_in_plane(volume: np.ndarray, image_size: int, *, order: int) -> np.ndarray:
  """Scales axes 0 and 1 so the longer fits `image_size`, then centre-pads.

  The same call with order=1 (image) and order=0 (mask) gives aligned outputs.
  """
  scale = image_size / max(volume.shape[0], volume.shape[1])
  target = [min(image_size, round(n * scale)) for n in volume.shape[:2]]
  zoom = [t / n for t, n in zip(target, volume.shape[:2])] + [1.0]
  scaled = ndimage.zoom(volume, zoom, order=order, grid_mode=True, mode='nearest')
  padding = []
  for n in scaled.shape[:2]:
    before = (image_size - n) // 2
    padding.append((before, image_size - n - before))
  return np.pad(scaled, padding + [(0, 0)])


def brain_slice_indices(foreground: np.ndarray) -> np.ndarray:
  """Axial indices whose foreground fraction is at least MIN_SLICE_FOREGROUND."""
  fraction = foreground.mean(axis=(0, 1))
  return np.flatnonzero(fraction >= MIN_SLICE_FOREGROUND)
