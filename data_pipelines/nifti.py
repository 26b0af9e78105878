"""Loading NIfTI volumes with nibabel, reoriented to RAS, with their geometry."""

import dataclasses

import nibabel as nib
import numpy as np


class NiftiError(ValueError):
  """A NIfTI file that cannot be read or does not hold a usable volume."""


@dataclasses.dataclass(frozen=True)
class Volume:
  """A 3D volume in RAS orientation with its affine.

  Attributes:
    data: float32 array [X, Y, Z] in RAS+ (closest canonical) orientation.
    affine: 4x4 voxel-to-world affine of `data`.
    original_affine: the affine as stored in the file, before reorientation.
  """
  data: np.ndarray
  affine: np.ndarray
  original_affine: np.ndarray

  @property
  def spacing(self) -> tuple[float, ...]:
    return tuple(float(s) for s in np.sqrt((self.affine[:3, :3] ** 2).sum(0)))


def load_volume(path: str) -> Volume:
  """Loads a 3D NIfTI volume, reoriented to the closest canonical (RAS+).

  Raises:
    NiftiError: the file is missing, unreadable, not 3D, or not finite. The
      message names the file.
  """
  try:
    image = nib.load(path)
    canonical = nib.as_closest_canonical(image)
    data = np.asarray(canonical.get_fdata(dtype=np.float32))
  except Exception as e:  # nibabel raises many types for corrupt files.
    raise NiftiError(f'{path}: cannot read NIfTI ({type(e).__name__}: {e})') from e
  if data.ndim == 4 and data.shape[3] == 1:
    data = data[..., 0]
  if data.ndim != 3:
    raise NiftiError(f'{path}: expected a 3D volume, found shape {data.shape}')
  if not np.all(np.isfinite(data)):
    raise NiftiError(f'{path}: volume holds non-finite values')
  return Volume(data=data, affine=canonical.affine, original_affine=image.affine)


def check_same_grid(image: Volume, mask: Volume, *, image_path: str,
                    mask_path: str, atol: float = 1e-3) -> None:
  """Raises NiftiError unless image and mask share shape and affine."""
  if image.data.shape != mask.data.shape:
    raise NiftiError(
        f'{mask_path}: mask shape {mask.data.shape} differs from image '
        f'{image_path} shape {image.data.shape}')
  if not np.allclose(image.affine, mask.affine, atol=atol):
    raise NiftiError(
        f'{mask_path}: mask affine differs from image {image_path} affine')


def save_volume(data: np.ndarray, affine: np.ndarray, path: str) -> None:
  """Writes `data` as a NIfTI-1 file with the given affine."""
  image = nib.Nifti1Image(data, affine)
  image.header.set_xyzt_units('mm')
  nib.save(image, path)
