"""Converts an ATLAS R2.0 tree into per-client TFRecord files and a manifest.

A subject that cannot be read or is inconsistent is skipped and listed in the
manifest with its reason; the others are converted. Files are written under
temporary names and renamed; `manifest.json` is written last, so a folder
without it is an unfinished conversion.
"""

import collections
import dataclasses
import json
import math
import os
from typing import Optional

import numpy as np
import tensorflow as tf
import tqdm

from data_pipelines import atlas
from data_pipelines import nifti
from data_pipelines import preprocessing
from data_pipelines import tfrecords

FORMAT_VERSION = 1
MANIFEST_NAME = 'manifest.json'
CLIENT_UNITS = ('site', 'subject')


@dataclasses.dataclass(frozen=True)
class SliceRecord:
  serialized: bytes
  has_lesion: bool


def subject_examples(subject: atlas.Subject, image_size: int,
                     spacing_mm: float) -> list[SliceRecord]:
  """Loads, checks and preprocesses one subject into serialised axial slices.

  Raises:
    nifti.NiftiError: a file is unreadable, or image and mask disagree.
  """
  image = nifti.load_volume(subject.image_path)
  mask = nifti.load_volume(subject.mask_path)
  nifti.check_same_grid(image, mask, image_path=subject.image_path,
                        mask_path=subject.mask_path)
  shape = preprocessing.shape_at_spacing(image.data.shape, image.spacing, spacing_mm)
  resampled = preprocessing.resize_to_shape(image.data, shape, order=1)
  mask_data = preprocessing.resize_to_shape(
      (mask.data > 0.5).astype(np.uint8), shape, order=0)
  try:
    normalized, foreground = preprocessing.normalize_volume(resampled)
  except ValueError as e:
    raise nifti.NiftiError(f'{subject.image_path}: {e}') from e
  image_2d = preprocessing.crop_or_pad_in_plane(normalized, image_size)
  mask_2d = preprocessing.crop_or_pad_in_plane(mask_data, image_size)
  foreground_2d = preprocessing.crop_or_pad_in_plane(foreground, image_size)
  return [
      SliceRecord(
          tfrecords.serialize_slice(
              image_2d[:, :, z], mask_2d[:, :, z], subject_id=subject.subject_id,
              site=subject.site, slice_index=int(z)),
          has_lesion=bool(mask_2d[:, :, z].any()))
      for z in preprocessing.brain_slice_indices(foreground_2d)
  ]


def balance_slices(records: list[SliceRecord], background_ratio: Optional[float],
                   rng: np.random.Generator) -> list[SliceRecord]:
  """All lesion slices plus a random ceil(ratio * max(1, lesion slices)) others.

  Keeps slice order. With `background_ratio` None every slice is kept.
  """
  if background_ratio is None:
    return records
  lesion = [i for i, r in enumerate(records) if r.has_lesion]
  background = [i for i, r in enumerate(records) if not r.has_lesion]
  keep = min(len(background), math.ceil(background_ratio * max(1, len(lesion))))
  chosen = set(lesion) | set(rng.choice(background, keep, replace=False).tolist())
  return [r for i, r in enumerate(records) if i in chosen]


def split_holdout(subjects: list[atlas.Subject], holdout_fraction: float,
                  seed: int) -> tuple[list[atlas.Subject], list[atlas.Subject]]:
  """Splits subjects into (train, holdout) within each site, by subject.

  Each site holds out round(fraction * K) of its K subjects, at most K - 1.
  """
  if not 0.0 <= holdout_fraction < 1.0:
    raise ValueError(f'holdout_fraction must be in [0, 1). Found {holdout_fraction}.')
  rng = np.random.default_rng(seed)
  by_site = collections.defaultdict(list)
  for subject in subjects:
    by_site[subject.site].append(subject)
  train, holdout = [], []
  for site in sorted(by_site):
    members = by_site[site]
    order = rng.permutation(len(members))
    num_holdout = min(len(members) - 1, round(holdout_fraction * len(members)))
    holdout += [members[i] for i in sorted(order[:num_holdout])]
    train += [members[i] for i in sorted(order[num_holdout:])]
  return train, holdout


def prepare_dataset(bids_dir: str, output_dir: str, *, client_unit: str,
                    image_size: int, spacing_mm: float = 1.0,
                    holdout_fraction: float = 0.2,
                    background_ratio: Optional[float] = None,
                    seed: int = 0) -> dict:
  """Converts the tree at `bids_dir`; returns the manifest it wrote.

  Args:
    bids_dir: root of an ATLAS R2.0 tree (the folder holding `Training/`).
    output_dir: where `clients/*.tfrecord`, `holdout.tfrecord` and
      `manifest.json` go.
    client_unit: 'site' (one client per cohort) or 'subject'.
    image_size: side of the square axial slices.
    spacing_mm: isotropic voxel size every volume is resampled to.
    holdout_fraction: fraction of each site's subjects held out for testing.
    background_ratio: if set, training clients keep every lesion slice and
      at most this many lesion-free slices per lesion slice (see
      `balance_slices`); held-out subjects keep every slice.
    seed: seeds the hold-out split and the choice of background slices.

  Raises:
    ValueError: a bad option, or no subject could be converted.
    FileNotFoundError: `bids_dir` holds no ATLAS tree.
  """
  if client_unit not in CLIENT_UNITS:
    raise ValueError(f'client_unit must be one of {CLIENT_UNITS}. Found {client_unit!r}.')
  if background_ratio is not None and background_ratio < 0:
    raise ValueError(f'background_ratio must be non-negative. Found {background_ratio}.')
  if not spacing_mm > 0:
    raise ValueError(f'spacing_mm must be positive. Found {spacing_mm}.')
  if image_size < 16:
    raise ValueError(f'image_size must be at least 16. Found {image_size}.')
  subjects = atlas.discover_subjects(bids_dir)
  train, holdout = split_holdout(subjects, holdout_fraction, seed)
  os.makedirs(os.path.join(output_dir, 'clients'), exist_ok=True)
  manifest_path = os.path.join(output_dir, MANIFEST_NAME)
  if os.path.exists(manifest_path):
    os.remove(manifest_path)

  examples, skipped = {}, []
  for subject in tqdm.tqdm(subjects, desc='subjects', unit='subject'):
    try:
      examples[subject] = subject_examples(subject, image_size, spacing_mm)
    except nifti.NiftiError as e:
      skipped.append({'site': subject.site, 'subject_id': subject.subject_id,
                      'reason': str(e)})
      tqdm.tqdm.write(f'skipped {subject.subject_id}: {e}')

  balance_rng = np.random.default_rng(seed)
  groups = collections.defaultdict(list)
  for subject in train:
    if subject in examples:
      examples[subject] = balance_slices(examples[subject], background_ratio, balance_rng)
      key = subject.site if client_unit == 'site' else subject.subject_id
      groups[key].append(subject)
  if not groups:
    raise ValueError(f'{bids_dir}: no training subject could be converted; '
                     f'skipped: {skipped}')
  clients = {
      client_id: _write_group(output_dir, f'clients/{client_id}.tfrecord',
                              members, examples)
      for client_id, members in sorted(groups.items())
  }
  converted_holdout = [s for s in holdout if s in examples]
  manifest = {
      'format_version': FORMAT_VERSION,
      'source': {'bids_dir': os.path.abspath(bids_dir), 'layout': 'atlas2'},
      'client_unit': client_unit,
      'image_size': image_size,
      'preprocessing': {
          **preprocessing.describe(image_size, spacing_mm, ['T1w']),
          'training_background_ratio': background_ratio,
      },
      'split': {'unit': 'subject', 'holdout_fraction': holdout_fraction,
                'seed': seed},
      'clients': clients,
      'holdout': _write_group(output_dir, 'holdout.tfrecord',
                              converted_holdout, examples),
      'skipped': skipped,
  }
  _write_json_atomically(manifest, manifest_path)
  return manifest


def _write_group(output_dir, relative_path, members, examples) -> dict:
  path = os.path.join(output_dir, relative_path)
  with tf.io.TFRecordWriter(path + '.tmp') as writer:
    for subject in members:
      for record in examples[subject]:
        writer.write(record.serialized)
  os.replace(path + '.tmp', path)
  return {
      'file': relative_path,
      'num_examples': sum(len(examples[s]) for s in members),
      'subjects': [s.subject_id for s in members],
      'sites': sorted({s.site for s in members}),
  }


def _write_json_atomically(value, path):
  with open(path + '.tmp', 'w') as f:
    json.dump(value, f, indent=2)
  os.replace(path + '.tmp', path)


def load_manifest(data_dir: str) -> dict:
  """Reads `data_dir/manifest.json`.

  Raises:
    FileNotFoundError: no manifest (the folder is not a finished conversion).
    ValueError: the manifest has an unknown format version.
  """
  path = os.path.join(data_dir, MANIFEST_NAME)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f'{path}: not found; run `python -m data_pipelines.prepare` first '
        '(a folder without a manifest is an unfinished conversion)')
  with open(path) as f:
    manifest = json.load(f)
  if manifest.get('format_version') != FORMAT_VERSION:
    raise ValueError(f'{path}: format_version {manifest.get("format_version")} '
                     f'is not {FORMAT_VERSION}')
  return manifest
