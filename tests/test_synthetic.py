"""The synthetic generator writes an ATLAS R2.0 tree, reproducibly."""

import hashlib
import os

import nibabel as nib
import numpy as np

from data_pipelines import atlas
from data_pipelines import synthetic


def _digest(paths):
  return hashlib.sha256(b''.join(
      np.asarray(nib.load(p).dataobj).tobytes() for p in paths)).hexdigest()


def test_layout_lesions_and_reproducibility(tmp_path, tiny_tree):
  root, subjects = tiny_tree
  assert len(subjects) == 9
  assert {s.site for s in subjects} == {'R001', 'R002', 'R003'}
  first = subjects[0]
  assert first.image_paths[0] == os.path.join(
      root, 'Training', 'R001', 'sub-r001s001', 'ses-1', 'anat',
      'sub-r001s001_ses-1_space-MNI152NLin2009aSym_T1w.nii.gz')
  assert first.mask_path.endswith(
      'sub-r001s001_ses-1_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz')
  assert atlas.discover(root) == subjects
  for subject in subjects:
    image = nib.load(subject.image_paths[0])
    mask = np.asarray(nib.load(subject.mask_path).dataobj)
    assert image.shape == mask.shape
    assert set(np.unique(mask)) == {0, 1}
    # Lesions are hypointense: darker on average than the rest of the brain.
    t1 = np.asarray(image.dataobj)
    assert t1[mask == 1].mean() < t1[(mask == 0) & (t1 > 0.2 * t1.max())].mean()
  with open(os.path.join(root, 'participants.tsv')) as f:
    assert len(f.read().strip().splitlines()) == 10

  again = str(tmp_path / 'again')
  repeat = synthetic.synthesize_tree(again, num_sites=3, subjects_per_site=3,
                                           seed=7, voxel_size_mm=6)
  assert _digest(s.image_paths[0] for s in repeat) == _digest(s.image_paths[0] for s in subjects)
  assert _digest(s.mask_path for s in repeat) == _digest(s.mask_path for s in subjects)


def test_isles_contrasts_and_site_differences(layout_trees):
  subjects = layout_trees['isles22'][1]
  site_medians = {}
  for subject in subjects:
    dwi, adc, _ = (np.asarray(nib.load(p).dataobj) for p in subject.image_paths)
    lesion = np.asarray(nib.load(subject.mask_path).dataobj) > 0
    brain = (dwi > 0.1 * dwi.max()) & ~lesion
    assert dwi[lesion].mean() > dwi[brain].mean()  # Restricted diffusion: bright on DWI,
    assert adc[lesion].mean() < adc[brain].mean()  # dark on ADC.
    site_medians.setdefault(subject.site, []).append(float(np.median(dwi[brain])))
  first, second = site_medians.values()
  assert abs(np.mean(first) - np.mean(second)) > 0.05 * max(np.mean(first), np.mean(second))


def test_site_sizes_vary_with_spread(tmp_path):
  subjects = synthetic.synthesize_tree(str(tmp_path), num_sites=6, subjects_per_site=4,
                                       seed=2, voxel_size_mm=6, site_size_spread=0.5)
  sizes = [sum(s.site == site for s in subjects) for site in sorted({s.site for s in subjects})]
  assert len(set(sizes)) > 1 and min(sizes) >= 2 and max(sizes) <= 6
