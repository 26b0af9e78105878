"""NIfTI loading: RAS reorientation, geometry checks, named errors."""

import nibabel as nib
import numpy as np
import pytest

from data_pipelines import nifti


def test_las_volume_is_reoriented_to_ras(tmp_path):
  data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
  las = np.diag([-2.0, 2.0, 2.0, 1.0])  # x axis points left
  path = str(tmp_path / 'las.nii.gz')
  nib.save(nib.Nifti1Image(data, las), path)
  volume = nifti.load_volume(path)
  np.testing.assert_array_equal(volume.data, data[::-1])
  assert volume.affine[0, 0] == 2.0
  np.testing.assert_array_equal(volume.original_affine, las)
  assert volume.spacing == (2.0, 2.0, 2.0)


def test_corrupt_file_error_names_the_file(tmp_path):
  path = tmp_path / 'broken_T1w.nii.gz'
  path.write_bytes(b'not a nifti file')
  with pytest.raises(nifti.NiftiError, match='broken_T1w.nii.gz'):
    nifti.load_volume(str(path))


def test_missing_file_is_a_nifti_error(tmp_path):
  with pytest.raises(nifti.NiftiError, match='absent.nii.gz'):
    nifti.load_volume(str(tmp_path / 'absent.nii.gz'))


def test_non_finite_and_4d_volumes_are_refused(tmp_path):
  nan_path = str(tmp_path / 'nan.nii.gz')
  nib.save(nib.Nifti1Image(np.full((2, 2, 2), np.nan, np.float32), np.eye(4)), nan_path)
  with pytest.raises(nifti.NiftiError, match='non-finite'):
    nifti.load_volume(nan_path)
  four_d = str(tmp_path / 'four_d.nii.gz')
  nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4)), four_d)
  with pytest.raises(nifti.NiftiError, match='3D'):
    nifti.load_volume(four_d)


def test_check_same_grid():
  image = nifti.Volume(np.zeros((4, 4, 4), np.float32), np.eye(4), np.eye(4))
  smaller = nifti.Volume(np.zeros((4, 4, 3), np.float32), np.eye(4), np.eye(4))
  shifted_affine = np.eye(4)
  shifted_affine[0, 3] = 1.0
  shifted = nifti.Volume(np.zeros((4, 4, 4), np.float32), shifted_affine, shifted_affine)
  nifti.check_same_grid(image, image, image_path='i', mask_path='m')
  with pytest.raises(nifti.NiftiError, match='m: mask shape'):
    nifti.check_same_grid(image, smaller, image_path='i', mask_path='m')
  with pytest.raises(nifti.NiftiError, match='affine'):
    nifti.check_same_grid(image, shifted, image_path='i', mask_path='m')
