"""A synthetic ATLAS R2.0-style tree: warped MNI152 2009a brains with lesions.

Each subject is the MNI152 2009a T1 template that nilearn ships, scaled by a
small random affine, with one to three stroke-like lesions (hypointense on T1,
ellipsoids of 3-20 mm radius inside the brain). Each site has its own scanner
effects: intensity scale and gamma, a smooth bias field and a noise level.
"""

import dataclasses
import json
import os

import numpy as np
from nilearn import datasets as nilearn_datasets
from scipy import ndimage

from data_pipelines import atlas
from data_pipelines import nifti


@dataclasses.dataclass(frozen=True)
class SiteEffects:
  intensity_scale: float
  gamma: float
  noise_std: float
  bias_amplitude: float


def draw_site_effects(rng: np.random.Generator) -> SiteEffects:
  return SiteEffects(
      intensity_scale=float(rng.uniform(300.0, 1200.0)),
      gamma=float(rng.uniform(0.8, 1.25)),
      noise_std=float(rng.uniform(0.01, 0.04)),
      bias_amplitude=float(rng.uniform(0.0, 0.2)))


def _warp(volume: np.ndarray, scales: np.ndarray, order: int) -> np.ndarray:
  """Scales `volume` about its centre by `scales` (one factor per axis)."""
  center = (np.array(volume.shape) - 1) / 2.0
  inverse = 1.0 / scales
  return ndimage.affine_transform(volume, np.diag(inverse),
                                  offset=center - inverse * center, order=order)


def _ellipsoid(shape, center, radii) -> np.ndarray:
  grid = np.ogrid[tuple(slice(0, n) for n in shape)]
  distance = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, center, radii))
  return distance <= 1.0


def _bias_field(shape, amplitude: float, rng: np.random.Generator) -> np.ndarray:
  axes = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing='ij')
  weights = rng.uniform(-1, 1, size=3)
  return 1.0 + amplitude * sum(w * a for w, a in zip(weights, axes)) / 3.0


def synthesize_subject(template: np.ndarray, brain: np.ndarray,
                       voxel_size_mm: int, effects: SiteEffects,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """Returns (T1w volume float32, lesion mask uint8) for one subject."""
  scales = rng.uniform(0.93, 1.07, size=3)
  t1 = _warp(template, scales, order=1)
  brain = _warp(brain.astype(np.float32), scales, order=0) > 0.5
  lesion = np.zeros(t1.shape, dtype=bool)
  # Lesions sit in the upper two thirds of the brain (supratentorial).
  candidates = np.argwhere(brain)
  z_floor = np.percentile(candidates[:, 2], 33)
  candidates = candidates[candidates[:, 2] >= z_floor]
  for _ in range(rng.integers(1, 4)):
    center = candidates[rng.integers(len(candidates))]
    radius_mm = float(np.exp(rng.uniform(np.log(3.0), np.log(20.0))))
    radii = np.maximum(radius_mm * rng.uniform(0.6, 1.4, size=3) / voxel_size_mm, 1.5)
    lesion |= _ellipsoid(t1.shape, center, radii)
  lesion &= brain
  softness = ndimage.gaussian_filter(lesion.astype(np.float32), sigma=0.7)
  t1 = t1 * (1.0 - rng.uniform(0.4, 0.7) * softness)
  t1 = np.clip(t1, 0.0, None) ** effects.gamma
  t1 = t1 * _bias_field(t1.shape, effects.bias_amplitude, rng)
  t1 = t1 + rng.normal(0.0, effects.noise_std, size=t1.shape)
  t1 = np.clip(t1, 0.0, None) * effects.intensity_scale
  return t1.astype(np.float32), lesion.astype(np.uint8)


def synthesize_atlas_tree(output_dir: str, *, num_sites: int,
                          subjects_per_site: int, seed: int,
                          voxel_size_mm: int = 3,
                          progress=None) -> list[atlas.Subject]:
  """Writes an ATLAS R2.0-style tree under `output_dir`; returns its subjects.

  Args:
    output_dir: root of the tree (the folder holding `Training/`).
    num_sites: number of cohort folders R001, R002, ...
    subjects_per_site: subjects in each cohort.
    seed: seeds every random draw; the same seed writes the same tree.
    voxel_size_mm: isotropic voxel size in mm (an integer: nilearn resamples
      its template to whole millimetres).
    progress: optional callable taking one message per written subject.
  """
  if num_sites < 1 or subjects_per_site < 1:
    raise ValueError(f'num_sites and subjects_per_site must be >= 1. Found '
                     f'{num_sites} and {subjects_per_site}.')
  template_image = nilearn_datasets.load_mni152_template(resolution=voxel_size_mm)
  template = template_image.get_fdata(dtype=np.float32)
  brain = nilearn_datasets.load_mni152_brain_mask(
      resolution=voxel_size_mm).get_fdata() > 0.5
  rng = np.random.default_rng(seed)
  subjects, participants = [], []
  for site_index in range(1, num_sites + 1):
    site = f'R{site_index:03d}'
    effects = draw_site_effects(rng)
    for subject_index in range(1, subjects_per_site + 1):
      subject_id = f'sub-r{site_index:03d}s{subject_index:03d}'
      session = 'ses-1'
      t1, lesion = synthesize_subject(template, brain, voxel_size_mm, effects, rng)
      image = atlas.t1w_path(output_dir, site, subject_id, session)
      mask = atlas.mask_path(output_dir, site, subject_id, session)
      os.makedirs(os.path.dirname(image), exist_ok=True)
      nifti.save_volume(t1, template_image.affine, image)
      nifti.save_volume(lesion, template_image.affine, mask)
      subjects.append(atlas.Subject(site, subject_id, session, image, mask))
      participants.append((subject_id, site))
      if progress:
        progress(f'{site}/{subject_id}: lesion {int(lesion.sum())} voxels')
  _write_dataset_files(output_dir, participants, seed, voxel_size_mm)
  return subjects


def _write_dataset_files(output_dir, participants, seed, voxel_size_mm):
  description = {
      'Name': 'Synthetic ATLAS R2.0-style stroke T1w dataset',
      'BIDSVersion': '1.6.0',
      'DatasetType': 'derivative',
      'GeneratedBy': [{'Name': 'tff_stroke data_pipelines.synthesize',
                       'Seed': seed, 'VoxelSizeMm': voxel_size_mm}],
  }
  with open(os.path.join(output_dir, 'dataset_description.json'), 'w') as f:
    json.dump(description, f, indent=2)
  with open(os.path.join(output_dir, 'participants.tsv'), 'w') as f:
    f.write('participant_id\tsite\n')
    for subject_id, site in participants:
      f.write(f'{subject_id}\t{site}\n')
