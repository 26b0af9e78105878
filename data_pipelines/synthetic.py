"""Synthetic multi-site stroke (or tumour) data in the real datasets' layouts.

Anatomy: the MNI152 2009a T1 template and grey/white-matter masks that
nilearn ships, with a per-subject random scaling and a smooth random
deformation. Stroke lesions sit in grey or white matter of one hemisphere,
mostly in the vascular territories (MCA, ACA, PCA; small deep lacunes),
from a few voxels to large territorial infarcts, one to four per subject,
with irregular shapes and partial-volume edges. Modalities follow the
lesion's contrast: hypointense on T1w and ADC, hyperintense on DWI, FLAIR
and T2. Each site has its own scanner (intensity scale and gamma, bias field,
noise, blur), its own lesion load and, optionally, its own size.

Layouts: `atlas2` (T1w; ATLAS R2.0), `isles22` (DWI, ADC, and FLAIR on a
coarser grid of its own; ISLES'22), `brats` (t1, t1ce, t2, flair and a
label map 1/2/4; one tumour per case). Every layout gets a participants.tsv
with a `site` column.
"""

import dataclasses
import json
import os

import nibabel as nib
from nibabel import processing as nib_processing
import numpy as np
from nilearn import datasets as nilearn_datasets
from scipy import ndimage

from data_pipelines import atlas
from data_pipelines import brats
from data_pipelines import isles22
from data_pipelines import nifti
from data_pipelines.subjects import Subject

FORMATS = ('atlas2', 'isles22', 'brats')
# Boxes in MNI mm (|x| range, y range, z range), the radius range in mm and
# the weight of each territory.
TERRITORIES = {
    'MCA': ((20, 65), (-60, 40), (-10, 60), (4.0, 30.0), 0.55),
    'ACA': ((2, 20), (-20, 60), (10, 75), (4.0, 20.0), 0.10),
    'PCA': ((5, 45), (-105, -55), (-15, 30), (4.0, 20.0), 0.15),
    'lacunar': ((10, 30), (-30, 20), (-5, 20), (1.5, 7.0), 0.20),
}
FLAIR_GRID_FACTOR = 1.5


@dataclasses.dataclass(frozen=True)
class SiteEffects:
  intensity_scale: float
  gamma: float
  noise_std: float
  bias_amplitude: float
  blur_mm: float
  lesion_load: float


def draw_site_effects(rng: np.random.Generator) -> SiteEffects:
  return SiteEffects(
      intensity_scale=float(rng.uniform(300.0, 1200.0)),
      gamma=float(rng.uniform(0.8, 1.25)),
      noise_std=float(rng.uniform(0.01, 0.04)),
      bias_amplitude=float(rng.uniform(0.0, 0.2)),
      blur_mm=float(rng.uniform(0.0, 2.0)),
      lesion_load=float(rng.uniform(0.7, 1.4)))


@dataclasses.dataclass(frozen=True)
class Template:
  """The template at one resolution: T1 in [0, 1], brain and tissue masks."""
  t1: np.ndarray
  brain: np.ndarray
  tissue: np.ndarray
  affine: np.ndarray
  voxel_size_mm: int

  @classmethod
  def load(cls, voxel_size_mm: int) -> 'Template':
    image = nilearn_datasets.load_mni152_template(resolution=voxel_size_mm)
    t1 = image.get_fdata(dtype=np.float32)
    mask = lambda load: load(resolution=voxel_size_mm).get_fdata() > 0.5
    tissue = (mask(nilearn_datasets.load_mni152_gm_mask)
              | mask(nilearn_datasets.load_mni152_wm_mask))
    return cls(t1 / max(float(t1.max()), 1e-6), mask(nilearn_datasets.load_mni152_brain_mask),
               tissue, image.affine, voxel_size_mm)


def _deformation(shape, voxel_size_mm: int, rng: np.random.Generator) -> np.ndarray:
  """Sample coordinates [3, X, Y, Z]: a random scaling plus a smooth warp."""
  scales = rng.uniform(0.93, 1.07, size=3)
  center = (np.array(shape) - 1) / 2.0
  grid = np.indices(shape, dtype=np.float32)
  coarse = [max(2, n // 8) for n in shape]
  amplitude = rng.uniform(1.0, 3.0) / voxel_size_mm
  coordinates = []
  for axis in range(3):
    field = ndimage.zoom(rng.normal(size=coarse), [n / c for n, c in zip(shape, coarse)],
                         order=3, grid_mode=True, mode='nearest')
    field *= amplitude / max(float(np.abs(field).max()), 1e-6)
    coordinates.append((grid[axis] - center[axis]) / scales[axis] + center[axis] + field)
  return np.stack(coordinates)


def _warp(volume: np.ndarray, coordinates: np.ndarray, order: int) -> np.ndarray:
  return ndimage.map_coordinates(volume.astype(np.float32), coordinates, order=order,
                                 mode='constant')


def _lesions(tissue: np.ndarray, affine: np.ndarray, voxel_size_mm: int, load: float,
             tumour: bool, rng: np.random.Generator) -> np.ndarray:
  """A boolean lesion mask inside `tissue`."""
  world = nib.affines.apply_affine(affine, np.argwhere(tissue))
  voxels = np.argwhere(tissue)
  lesion = np.zeros(tissue.shape, dtype=bool)
  count = 1 if tumour else int(rng.choice([1, 2, 3, 4], p=[0.6, 0.25, 0.1, 0.05]))
  side = rng.choice([-1.0, 1.0])
  names = list(TERRITORIES)
  weights = np.array([TERRITORIES[n][4] for n in names])
  for _ in range(count):
    if tumour:
      candidates, radius_range = voxels, (10.0, 30.0)
    else:
      x_range, y_range, z_range, radius_range, _ = TERRITORIES[
          names[rng.choice(len(names), p=weights / weights.sum())]]
      inside = ((np.abs(world[:, 0]) >= x_range[0]) & (np.abs(world[:, 0]) <= x_range[1])
                & (np.sign(world[:, 0]) == side)
                & (world[:, 1] >= y_range[0]) & (world[:, 1] <= y_range[1])
                & (world[:, 2] >= z_range[0]) & (world[:, 2] <= z_range[1]))
      candidates = voxels[inside] if inside.any() else voxels
    center = candidates[rng.integers(len(candidates))]
    radius_mm = load * float(np.exp(rng.uniform(*np.log(radius_range))))
    radii = np.maximum(radius_mm * rng.uniform(0.6, 1.4, size=3) / voxel_size_mm, 1.0)
    lesion |= _irregular_blob(tissue.shape, center, radii, rng)
  return lesion & tissue


def _irregular_blob(shape, center, radii, rng) -> np.ndarray:
  """An ellipsoid whose boundary is perturbed by smooth noise."""
  lower = np.maximum(0, np.floor(center - 1.5 * radii).astype(int))
  upper = np.minimum(shape, np.ceil(center + 1.5 * radii + 1).astype(int))
  box = tuple(slice(a, b) for a, b in zip(lower, upper))
  grid = np.ogrid[box]
  distance = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, center, radii))
  noise = ndimage.gaussian_filter(rng.normal(size=distance.shape), sigma=1.5)
  noise /= max(float(np.abs(noise).max()), 1e-6)
  blob = np.zeros(shape, dtype=bool)
  blob[box] = np.sqrt(distance) + 0.3 * noise <= 1.0
  return blob


def _contrast(modality: str, anatomy: np.ndarray, brain: np.ndarray, lesion: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
  """Intensity in [0, ~1.5] of one modality, with the lesion's contrast."""
  csf = brain & (anatomy < 0.35)
  depth = rng.uniform(0.4, 0.7)
  if modality in ('T1w', 't1'):
    return anatomy * (1.0 - depth * lesion)
  if modality == 't1ce':
    rim = np.clip(4.0 * lesion * (1.0 - lesion), 0.0, 1.0)
    return anatomy * (1.0 - depth * lesion) + 0.6 * rim
  if modality == 't2':
    return brain * (1.1 - 0.7 * anatomy) + depth * lesion
  if modality in ('FLAIR', 'flair'):
    return (brain & ~csf) * (0.7 - 0.3 * anatomy) + depth * lesion
  if modality == 'DWI':
    return brain * (0.3 + 0.2 * anatomy) + (0.5 + depth) * lesion
  if modality == 'ADC':
    return brain * (0.4 + 0.6 * csf) * (1.0 - depth * lesion)
  raise ValueError(f'unknown modality {modality!r}')


def _scanner(volume: np.ndarray, effects: SiteEffects, voxel_size_mm: int,
             rng: np.random.Generator) -> np.ndarray:
  """The site's scanner: gamma, blur, bias field, noise, intensity scale."""
  volume = np.clip(volume, 0.0, None) ** effects.gamma
  if effects.blur_mm > 0:
    volume = ndimage.gaussian_filter(volume, sigma=effects.blur_mm / voxel_size_mm / 2.355)
  axes = np.meshgrid(*[np.linspace(-1, 1, n) for n in volume.shape], indexing='ij')
  bias = 1.0 + effects.bias_amplitude * sum(w * a for w, a in zip(rng.uniform(-1, 1, 3), axes)) / 3
  volume = volume * bias + rng.normal(0.0, effects.noise_std, size=volume.shape)
  return (np.clip(volume, 0.0, None) * effects.intensity_scale).astype(np.float32)


def synthesize_subject(template: Template, modalities, effects: SiteEffects,
                       rng: np.random.Generator, *, tumour: bool = False
                       ) -> tuple[dict[str, np.ndarray], np.ndarray]:
  """({modality: volume float32}, lesion mask bool) of one subject."""
  coordinates = _deformation(template.t1.shape, template.voxel_size_mm, rng)
  anatomy = _warp(template.t1, coordinates, order=1)
  brain = _warp(template.brain, coordinates, order=0) > 0.5
  tissue = _warp(template.tissue, coordinates, order=0) > 0.5
  lesion = _lesions(tissue, template.affine, template.voxel_size_mm,
                    effects.lesion_load, tumour, rng)
  soft = ndimage.gaussian_filter(lesion.astype(np.float32), sigma=0.7)
  volumes = {m: _scanner(_contrast(m, anatomy, brain, soft, rng), effects,
                         template.voxel_size_mm, rng) for m in modalities}
  return volumes, lesion


def _brats_labels(lesion: np.ndarray) -> np.ndarray:
  """Oedema (2) outside, enhancing tumour (4), necrotic core (1) inside."""
  depth = ndimage.distance_transform_edt(lesion)
  depth /= max(float(depth.max()), 1.0)
  labels = np.where(lesion, 2, 0)
  labels[depth > 0.4] = 4
  labels[depth > 0.7] = 1
  return labels.astype(np.uint8)


def _save(data: np.ndarray, affine: np.ndarray, path: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  nifti.save_volume(data, affine, path)


def _write_subject(layout, output_dir, site, index, volumes, lesion, template) -> Subject:
  save = lambda data, path: _save(data, template.affine, path)
  if layout == 'atlas2':
    site_number = int(site[1:])
    subject_id, session = f'sub-r{site_number:03d}s{index:03d}', 'ses-1'
    image = atlas.t1w_path(output_dir, site, subject_id, session)
    mask = atlas.mask_path(output_dir, site, subject_id, session)
    save(volumes['T1w'], image)
    save(lesion.astype(np.uint8), mask)
    return Subject(site, subject_id, session, (('T1w', image),), mask)
  if layout == 'isles22':
    subject_id, session = f'sub-strokecase{index:04d}', 'ses-0001'
    channels = isles22.channel_paths(output_dir, subject_id, session)
    for name, path in channels:
      data = volumes[name]
      if name == 'FLAIR':
        coarse = _on_coarser_grid(data, template.affine)
        _save(np.asarray(coarse.dataobj), coarse.affine, path)
      else:
        save(data, path)
    mask = isles22.mask_path(output_dir, subject_id, session)
    save(lesion.astype(np.uint8), mask)
    return Subject(site, subject_id, session, channels, mask)
  case_id = f'BraTS2021_{index:05d}'
  channels, seg = brats.case_paths(output_dir, case_id)
  for name, path in channels:
    save(volumes[name], path)
  save(_brats_labels(lesion), seg)
  return Subject(site, case_id, '', channels, seg)


def _on_coarser_grid(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
  """The volume resampled onto its own grid, FLAIR_GRID_FACTOR times coarser."""
  coarse_affine = affine.copy()
  coarse_affine[:3, :3] *= FLAIR_GRID_FACTOR
  shape = tuple(int(np.ceil(n / FLAIR_GRID_FACTOR)) for n in data.shape)
  return nib_processing.resample_from_to(nib.Nifti1Image(data, affine),
                                         (shape, coarse_affine), order=1)


_MODALITIES = {'atlas2': atlas.CHANNELS, 'isles22': isles22.CHANNELS, 'brats': brats.CHANNELS}


def synthesize_tree(output_dir: str, *, layout: str = 'atlas2', num_sites: int,
                    subjects_per_site: int, seed: int, voxel_size_mm: int = 3,
                    site_size_spread: float = 0.0, progress=None) -> list[Subject]:
  """Writes a synthetic dataset under `output_dir`; returns its subjects.

  Args:
    output_dir: root of the tree.
    layout: one of FORMATS.
    num_sites: number of sites (ATLAS cohort folders R001, R002, ...).
    subjects_per_site: subjects per site (the mean, with `site_size_spread`).
    seed: seeds every random draw; the same seed writes the same tree.
    voxel_size_mm: isotropic voxel size in mm (an integer: nilearn resamples
      its template to whole millimetres).
    site_size_spread: each site's size is drawn uniformly within this
      fraction of `subjects_per_site` (0: every site the same size).
    progress: optional callable taking one message per written subject.
  """
  if layout not in FORMATS:
    raise ValueError(f'layout must be one of {FORMATS}. Found {layout!r}.')
  if num_sites < 1 or subjects_per_site < 1 or not 0 <= site_size_spread < 1:
    raise ValueError(f'num_sites and subjects_per_site must be >= 1 and site_size_spread in '
                     f'[0, 1). Found {num_sites}, {subjects_per_site}, {site_size_spread}.')
  template = Template.load(voxel_size_mm)
  rng = np.random.default_rng(seed)
  subjects, index = [], 0
  for site_number in range(1, num_sites + 1):
    site = f'R{site_number:03d}'
    effects = draw_site_effects(rng)
    size = max(1, round(subjects_per_site * rng.uniform(1 - site_size_spread,
                                                        1 + site_size_spread)))
    for site_index in range(1, size + 1):
      index += 1
      volumes, lesion = synthesize_subject(template, _MODALITIES[layout], effects, rng,
                                           tumour=layout == 'brats')
      subject = _write_subject(layout, output_dir, site,
                               site_index if layout == 'atlas2' else index,
                               volumes, lesion, template)
      subjects.append(subject)
      if progress:
        progress(f'{site}/{subject.key}: lesion {int(lesion.sum())} voxels')
  _write_dataset_files(output_dir, layout, subjects, seed, voxel_size_mm)
  return subjects


def _write_dataset_files(output_dir, layout, subjects, seed, voxel_size_mm):
  description = {
      'Name': f'Synthetic {layout}-layout lesion dataset',
      'BIDSVersion': '1.6.0',
      'DatasetType': 'derivative',
      'GeneratedBy': [{'Name': 'tff_stroke data_pipelines.synthesize',
                       'Seed': seed, 'VoxelSizeMm': voxel_size_mm}],
  }
  with open(os.path.join(output_dir, 'dataset_description.json'), 'w') as f:
    json.dump(description, f, indent=2)
  with open(os.path.join(output_dir, 'participants.tsv'), 'w') as f:
    f.write('participant_id\tsite\n')
    for subject in subjects:
      f.write(f'{subject.subject_id}\t{subject.site}\n')
