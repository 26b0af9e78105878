"""Loading NIfTI volumes with nibabel, reoriented to RAS, with their geometry."""

from collections.abc import Sequence
import dataclasses

import nibabel as nib
from nibabel import processing as nib_processing
import numpy as np


class NiftiError(ValueError):
  """A NIfTI file that cannot be read or does not hold a usable volume.

  Attributes:
    path: the file; the message is 'PATH: PROBLEM'.
  """

  def __init__(self, path: str, problem: str):
    super().__init__(f'{path}: {problem}')
    self.path = path


@dataclasses.dataclass(frozen=True)
class Volume:
  """A 3D volume (or channels of one) in RAS orientation with its affine.

  Attributes:
    data: float32 array [X, Y, Z] or [X, Y, Z, C] in RAS+ (closest canonical)
      orientation.
    affine: 4x4 voxel-to-world affine of `data`.
    original_affine: the affine as stored in the file, before reorientation.
  """
  data: np.ndarray
  affine: np.ndarray
  original_affine: np.ndarray

  @property
  def spacing(self) -> tuple[float, ...]:
    return tuple(float(s) for s in np.sqrt((self.affine[:3, :3] ** 2).sum(0)))


def _read_3d(path: str) -> nib.Nifti1Image:
  """The file's 3D volume as float32 in its stored orientation.

  Raises:
    NiftiError: missing, unreadable, truncated, not NIfTI, not 3D, not finite.
  """
  try:
    image = nib.load(path)
    data = np.asarray(image.get_fdata(dtype=np.float32))
  except Exception as e:  # nibabel raises many types for corrupt files.
    raise NiftiError(path, f'cannot read NIfTI ({type(e).__name__}: {e})') from e
  if data.ndim == 4 and data.shape[3] == 1:
    data = data[..., 0]
  if data.ndim != 3:
    raise NiftiError(path, f'expected a 3D volume, found shape {data.shape}')
  non_finite = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
  if non_finite:
    raise NiftiError(path, f'volume holds {non_finite} non-finite (NaN or Inf) values')
  return nib.Nifti1Image(data, image.affine)


def load_volume(path: str) -> Volume:
  """Loads a 3D NIfTI volume, reoriented to the closest canonical (RAS+).

  Raises:
    NiftiError: the file is missing, unreadable, not 3D, or not finite. The
      message names the file.
  """
  image = _read_3d(path)
  canonical = nib.as_closest_canonical(image)
  return Volume(data=np.asarray(canonical.dataobj, np.float32),
                affine=canonical.affine, original_affine=image.affine)


def load_channels(paths: Sequence[str]) -> Volume:
  """Loads co-registered modalities as channels [X, Y, Z, C] in RAS+.

  The first file's grid is the reference; a modality on another grid (as
  FLAIR in ISLES'22) is resampled onto it with linear interpolation.

  Raises:
    NiftiError: a file is unusable (see `load_volume`); the message names it.
  """
  reference = _read_3d(paths[0])
  arrays = [np.asarray(reference.dataobj)]
  for path in paths[1:]:
    image = _read_3d(path)
    if image.shape != reference.shape or not np.allclose(image.affine, reference.affine,
                                                         atol=1e-3):
      image = nib_processing.resample_from_to(image, reference, order=1)
    arrays.append(np.asarray(image.dataobj, np.float32))
  stacked = nib.Nifti1Image(np.stack(arrays, axis=-1), reference.affine)
  canonical = nib.as_closest_canonical(stacked)
  return Volume(data=np.asarray(canonical.dataobj, np.float32),
                affine=canonical.affine, original_affine=reference.affine)


def load_mask(path: str, image: Volume, *, image_path: str,
              labels: Sequence[int]) -> np.ndarray:
  """The lesion mask on `image`'s grid as uint8 0/1 (every non-zero label).

  Raises:
    NiftiError: the mask is unusable, disagrees with the image's grid, or
      holds a value outside `labels`.
  """
  mask = load_volume(path)
  check_same_grid(image, mask, image_path=image_path, mask_path=path)
  unexpected = _values_outside(mask.data, labels)
  if unexpected.size:
    shown = ', '.join(f'{v:g}' for v in unexpected[:5])
    raise NiftiError(path, f'mask holds label(s) {shown}{"..." if unexpected.size > 5 else ""}'
                     f' where only {list(labels)} are expected')
  return (mask.data > 0).astype(np.uint8)


def _values_outside(data: np.ndarray, labels: Sequence[int]) -> np.ndarray:
  """The distinct values of `data` not in `labels`, in linear time for label maps."""
  integral = np.rint(data)
  if np.array_equal(integral, data) and integral.min() >= 0 and integral.max() < 2**16:
    values = np.flatnonzero(np.bincount(integral.astype(np.int64).ravel()))
  else:
    values = np.unique(data)
  return values[~np.isin(values, labels)]


def check_same_grid(image: Volume, mask: Volume, *, image_path: str,
                    mask_path: str, atol: float = 1e-3) -> None:
  """Raises NiftiError unless image and mask share spatial shape and affine."""
  if image.data.shape[:3] != mask.data.shape[:3]:
    raise NiftiError(mask_path, f'mask shape {mask.data.shape[:3]} differs from image '
                     f'{image_path} shape {image.data.shape[:3]}')
  if not np.allclose(image.affine, mask.affine, atol=atol):
    raise NiftiError(mask_path, f'mask affine differs from image {image_path} affine')


def save_volume(data: np.ndarray, affine: np.ndarray, path: str) -> None:
  """Writes `data` as a NIfTI-1 file with the given affine."""
  image = nib.Nifti1Image(data, affine)
  image.header.set_xyzt_units('mm')
  nib.save(image, path)
