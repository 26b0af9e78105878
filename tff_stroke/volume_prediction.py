"""Segments NIfTI files with an exported SavedModel's `segment_volume`.

Outside the graph, only geometry: reorient to RAS, resample to the training
spacing and back, and restore the input's orientation, so the written mask
has the input's shape, affine and header geometry.
"""

import dataclasses
import json
import os

import nibabel as nib
import numpy as np
import tensorflow as tf

from data_pipelines import nifti
from data_pipelines import preprocessing
from tff_stroke import export

NIFTI_SUFFIXES = ('.nii.gz', '.nii')


@dataclasses.dataclass(frozen=True)
class Segmentation:
  probability: nib.spatialimages.SpatialImage  # float32, the input's grid
  mask: nib.spatialimages.SpatialImage  # uint8, the input's grid


class VolumeSegmenter:
  """Loads the SavedModel once; segments one file per call."""

  def __init__(self, saved_model_dir: str):
    self._segment = tf.saved_model.load(saved_model_dir).signatures['segment_volume']
    self.preprocessing = json.loads(
        export.read_asset(saved_model_dir, export.PREPROCESSING_ASSET))

  def _load(self, path: str) -> tuple[nib.spatialimages.SpatialImage, np.ndarray]:
    """The image as stored, and its data in RAS+ with channels last."""
    try:
      image = nib.load(path)
      canonical = nib.as_closest_canonical(image)
      data = np.asarray(canonical.get_fdata(dtype=np.float32))
    except Exception as e:  # nibabel raises many types for corrupt files.
      raise nifti.NiftiError(path, f'not a readable NIfTI file ({type(e).__name__}: {e})') from e
    channels = len(self.preprocessing['channels'])
    if data.ndim == 3:
      data = data[..., None]
    if data.ndim != 4:
      raise nifti.NiftiError(path, f'expected a 3D volume (or 4D with {channels} '
                                   f'channel(s) last), found shape {data.shape}')
    if data.shape[3] != channels:
      raise nifti.NiftiError(path, f'has {data.shape[3]} volumes along axis 4; the model '
                                   f'takes {channels} channel(s) {self.preprocessing["channels"]}')
    if not np.all(np.isfinite(data)):
      raise nifti.NiftiError(path, 'volume holds NaN or infinite values')
    return image, data

  def segment(self, path: str, threshold: float = 0.5) -> Segmentation:
    """Probability and mask of the file at `path`, in its own grid.

    Raises:
      nifti.NiftiError: the file is not NIfTI, has the wrong number of
        channels, or holds non-finite values; the message names the file.
    """
    image, data = self._load(path)
    canonical_affine = nib.as_closest_canonical(image).affine
    spacing = np.sqrt((canonical_affine[:3, :3] ** 2).sum(0))
    target = preprocessing.shape_at_spacing(
        data.shape, spacing, self.preprocessing['spacing_mm'])
    resampled = preprocessing.resize_to_shape(data, target, order=1)
    try:
      outputs = self._segment(volume=tf.constant(resampled, tf.float32))
    except tf.errors.InvalidArgumentError as e:
      raise nifti.NiftiError(path, e.message.splitlines()[0]) from e
    probability = preprocessing.resize_to_shape(
        outputs['lesion_probability'].numpy(), data.shape[:3], order=1)
    to_input = nib.orientations.ornt_transform(
        nib.io_orientation(canonical_affine), nib.io_orientation(image.affine))
    probability = nib.orientations.apply_orientation(probability, to_input)
    return Segmentation(
        probability=_like(image, probability.astype(np.float32)),
        mask=_like(image, (probability > threshold).astype(np.uint8)))


def _like(image, data: np.ndarray) -> nib.spatialimages.SpatialImage:
  """`data` in an image of the input's class, affine and header geometry."""
  header = image.header.copy()
  header.set_data_shape(data.shape)
  header.set_data_dtype(data.dtype)
  header.set_slope_inter(1.0, 0.0)
  return type(image)(data, image.affine, header)


def nifti_files(directory: str) -> list[str]:
  return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                if name.endswith(NIFTI_SUFFIXES))


def stem(path: str) -> str:
  name = os.path.basename(path)
  for suffix in NIFTI_SUFFIXES:
    if name.endswith(suffix):
      return name[:-len(suffix)]
  return name
