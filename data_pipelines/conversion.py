"""Converts a dataset folder into per-client TFRecord files and a manifest.

Subjects stream one at a time (or over `num_workers` processes) through
loading, checks and preprocessing into per-subject staging files, so memory
does not grow with the number of subjects. Partitioning and the split by
subject then use only each subject's slice count and lesion load, and the
final files are assembled from the staging files.

A subject that cannot be read or is inconsistent is skipped and listed in the
manifest with the file and the reason; the others are converted. Files are
written under temporary names and renamed; `manifest.json` is removed first
and written last, so a folder without it is an unfinished conversion. The
same inputs and options give the same bytes.
"""

import collections
import dataclasses
import functools
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import tempfile
import zlib
from typing import Optional

import numpy as np
import tensorflow as tf
import tqdm

from data_pipelines import json_files
from data_pipelines import layouts
from data_pipelines import nifti
from data_pipelines import partitions
from data_pipelines import preprocessing
from data_pipelines.subjects import Subject
from data_pipelines import tfrecords

FORMAT_VERSION = 2
MANIFEST_NAME = 'manifest.json'
CLIENT_UNITS = ('site', 'subject')
COMPRESSIONS = ('', 'GZIP')


@dataclasses.dataclass(frozen=True)
class ConversionOptions:
  """Every choice of a conversion; the manifest records them all.

  Attributes:
    image_size: side of the square axial slices.
    spacing_mm: isotropic voxel size every volume is resampled to.
    client_unit: 'site' (one client per site) or 'subject'.
    partition: 'natural', 'dirichlet' or 'quantity' (see `partitions`); the
      last two regroup the training sites' subjects into `num_clients`
      clients and need client_unit 'site'.
    num_clients: clients of a dirichlet or quantity partition.
    alpha: Dirichlet concentration of those partitions.
    holdout_fraction: fraction of each client's subjects held out for testing
      (of each site's, for client_unit 'subject').
    validation_fraction: fraction held out the same way for validation.
    test_sites: sites held out whole, for a generalisation test.
    background_ratio: if set, training clients keep every lesion slice and at
      most this many lesion-free slices per lesion slice.
    compression: '' or 'GZIP' for the TFRecord files.
    normalization: 'zscore' or 'percentile' (see preprocessing.normalize_volume).
    seed: seeds partition, split and slice choice.
  """
  image_size: int
  spacing_mm: float = 1.0
  client_unit: str = 'site'
  partition: str = 'natural'
  num_clients: Optional[int] = None
  alpha: float = 1.0
  holdout_fraction: float = 0.2
  validation_fraction: float = 0.0
  test_sites: tuple[str, ...] = ()
  background_ratio: Optional[float] = None
  compression: str = ''
  normalization: str = 'zscore'
  seed: int = 0

  def validate(self) -> None:
    """Raises ValueError naming the first impossible option."""
    if self.client_unit not in CLIENT_UNITS:
      raise ValueError(f'client_unit must be one of {CLIENT_UNITS}. Found {self.client_unit!r}.')
    if self.partition not in partitions.PARTITIONS:
      raise ValueError(f'partition must be one of {partitions.PARTITIONS}. '
                       f'Found {self.partition!r}.')
    if self.partition != 'natural' and (self.client_unit != 'site' or not self.num_clients):
      raise ValueError(f'partition {self.partition!r} regroups subjects into num_clients '
                       'clients: it needs client_unit site and num_clients')
    if self.partition == 'natural' and self.num_clients:
      raise ValueError('num_clients is for the dirichlet and quantity partitions; the '
                       'natural partition has one client per site or subject')
    if self.background_ratio is not None and self.background_ratio < 0:
      raise ValueError(f'background_ratio must be non-negative. Found {self.background_ratio}.')
    if not self.spacing_mm > 0:
      raise ValueError(f'spacing_mm must be positive. Found {self.spacing_mm}.')
    if self.image_size < 16:
      raise ValueError(f'image_size must be at least 16. Found {self.image_size}.')
    if not (0 <= self.holdout_fraction and 0 <= self.validation_fraction
            and self.holdout_fraction + self.validation_fraction < 1):
      raise ValueError('holdout_fraction and validation_fraction must be non-negative with '
                       f'a sum below 1. Found {self.holdout_fraction} and '
                       f'{self.validation_fraction}.')
    if self.normalization not in preprocessing.NORMALIZATIONS:
      raise ValueError(f'normalization must be one of {preprocessing.NORMALIZATIONS}. '
                       f'Found {self.normalization!r}.')
    if self.compression not in COMPRESSIONS:
      raise ValueError(f'compression must be one of {COMPRESSIONS}. Found {self.compression!r}.')


@dataclasses.dataclass(frozen=True)
class StagedSubject:
  """A converted subject: its slices in a staging file, and what partitioning needs."""
  subject: Subject
  path: str
  lesion_flags: tuple[bool, ...]
  lesion_voxels: int
  sha256: dict[str, str]


def file_sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def subject_slices(subject: Subject, mask_labels, options: ConversionOptions):
  """Loads, checks and preprocesses one subject.

  Returns:
    (image [S, S, Z, C] normalised, mask [S, S, Z] uint8, axial indices to keep).

  Raises:
    nifti.NiftiError: a file is missing, unreadable or inconsistent; the
      message names it.
  """
  if not subject.mask_path or not os.path.exists(subject.mask_path):
    raise nifti.NiftiError(subject.mask_path, 'lesion mask missing')
  image = nifti.load_channels(subject.image_paths)
  mask = nifti.load_mask(subject.mask_path, image, image_path=subject.image_paths[0],
                         labels=mask_labels)
  shape = preprocessing.shape_at_spacing(image.data.shape, image.spacing, options.spacing_mm)
  resampled = preprocessing.resize_to_shape(image.data, shape, order=1)
  mask = preprocessing.resize_to_shape(mask, shape, order=0)
  try:
    normalized, foreground = preprocessing.normalize_channels(resampled, options.normalization)
  except ValueError as e:
    raise nifti.NiftiError(subject.image_paths[0], str(e)) from e
  image_2d = preprocessing.crop_or_pad_in_plane(normalized, options.image_size)
  mask_2d = preprocessing.crop_or_pad_in_plane(mask, options.image_size)
  foreground_2d = preprocessing.crop_or_pad_in_plane(foreground, options.image_size)
  return image_2d, mask_2d, preprocessing.brain_slice_indices(foreground_2d)


def stage_subject(subject: Subject, mask_labels, options: ConversionOptions,
                  staging_dir: str) -> StagedSubject:
  """Converts one subject into a staging TFRecord file (raises nifti.NiftiError)."""
  sha256 = {path: file_sha256(path) for path in subject.source_paths if os.path.isfile(path)}
  image, mask, indices = subject_slices(subject, mask_labels, options)
  path = os.path.join(staging_dir, subject.key + '.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    for z in indices:
      writer.write(tfrecords.serialize_slice(
          image[:, :, z], mask[:, :, z], subject_id=subject.key,
          site=subject.site, slice_index=int(z)))
  return StagedSubject(subject, path, tuple(bool(mask[:, :, z].any()) for z in indices),
                       int(mask.sum()), sha256)


def _stage_or_skip(subject, mask_labels, options, staging_dir):
  try:
    return stage_subject(subject, mask_labels, options, staging_dir)
  except nifti.NiftiError as e:
    return layouts.skip_entry(subject, e.path, str(e))
  except OSError as e:  # A file that vanished or cannot be opened for hashing.
    return layouts.skip_entry(subject, getattr(e, 'filename', '') or '', str(e))


def chosen_slices(staged: StagedSubject, background_ratio: Optional[float],
                  seed: int) -> list[int]:
  """All lesion slices plus a random ceil(ratio * max(1, lesion slices)) others.

  Seeded by the subject id, so the choice does not depend on conversion order.
  With `background_ratio` None every slice is kept.
  """
  flags = staged.lesion_flags
  if background_ratio is None:
    return list(range(len(flags)))
  lesion = [i for i, f in enumerate(flags) if f]
  background = [i for i, f in enumerate(flags) if not f]
  keep = min(len(background), math.ceil(background_ratio * max(1, len(lesion))))
  rng = np.random.default_rng([seed, zlib.crc32(staged.subject.key.encode())])
  return sorted(lesion + rng.choice(background, keep, replace=False).tolist())


def assign_clients(staged: list[StagedSubject], options: ConversionOptions) -> dict:
  """{'clients': {id: [staged]}, 'holdout': [...], 'validation': [...],
  'test_sites': [...]}: the partition and the split by subject."""
  rng = np.random.default_rng(options.seed)
  test_sites = [s for s in staged if s.subject.site in options.test_sites]
  training_sites = [s for s in staged if s.subject.site not in options.test_sites]
  if options.partition == 'natural':
    names = [s.subject.site for s in training_sites]
  else:
    if options.partition == 'dirichlet':
      assignment = partitions.dirichlet_partition(
          [s.lesion_voxels for s in training_sites], options.num_clients, options.alpha, rng)
    else:
      assignment = partitions.quantity_partition(
          len(training_sites), options.num_clients, options.alpha, rng)
    names = [f'client_{client:03d}' for client in assignment]
  groups = collections.defaultdict(list)
  for s, name in zip(training_sites, names):
    groups[name].append(s)
  result = {'clients': {}, 'holdout': [], 'validation': [], 'test_sites': test_sites}
  for group in sorted(groups):
    holdout, validation, train = partitions.split_by_subject(
        groups[group], [options.holdout_fraction, options.validation_fraction], rng)
    result['holdout'] += holdout
    result['validation'] += validation
    if options.client_unit == 'subject':
      result['clients'].update({s.subject.key: [s] for s in train})
    else:
      result['clients'][group] = train
  return result


def prepare_dataset(bids_dir: str, output_dir: str, options: ConversionOptions, *,
                    layout: str = 'auto', site_column: Optional[str] = None,
                    num_workers: int = 1) -> dict:
  """Converts the dataset at `bids_dir`; returns the manifest it wrote.

  Args:
    bids_dir: root of the dataset (see `layouts`).
    output_dir: where `clients/*.tfrecord`, `holdout.tfrecord` (and
      `validation.tfrecord`, `test_sites.tfrecord` when used) and
      `manifest.json` go.
    options: see ConversionOptions.
    layout: 'auto' or one of layouts.LAYOUTS.
    site_column: take each subject's site from this participants.tsv column.
    num_workers: processes converting subjects in parallel.

  Raises:
    ValueError: a bad option, or no training subject could be converted.
    FileNotFoundError: `bids_dir` holds no dataset of the layout.
  """
  options.validate()
  if num_workers < 1:
    raise ValueError(f'num_workers must be at least 1. Found {num_workers}.')
  dataset = layouts.read_dataset(bids_dir, layout, site_column)
  unknown_sites = set(options.test_sites) - {s.site for s in dataset.subjects}
  if unknown_sites:
    raise ValueError(f'test_sites {sorted(unknown_sites)} are not sites of {bids_dir}; '
                     f'sites: {sorted({s.site for s in dataset.subjects})}')
  os.makedirs(os.path.join(output_dir, 'clients'), exist_ok=True)
  manifest_path = os.path.join(output_dir, MANIFEST_NAME)
  if os.path.exists(manifest_path):
    os.remove(manifest_path)
  skipped = list(dataset.skipped)
  staging_dir = tempfile.mkdtemp(prefix='.staging-', dir=output_dir)
  try:
    staged = _stage_all(dataset, options, staging_dir, num_workers, skipped)
    assigned = assign_clients(staged, options)
    if not any(assigned['clients'].values()):
      raise ValueError(f'{bids_dir}: no training subject could be converted; '
                       f'skipped: {skipped}')
    write = functools.partial(_write_group, output_dir, options=options)
    groups = {
        'clients': {client_id: write(f'clients/{client_id}.tfrecord', members, balance=True)
                    for client_id, members in sorted(assigned['clients'].items())},
    }
    for split in ('holdout', 'validation', 'test_sites'):
      if assigned[split] or split == 'holdout':
        groups[split] = write(f'{split}.tfrecord', assigned[split], balance=False)
  finally:
    shutil.rmtree(staging_dir, ignore_errors=True)
  _remove_stale_files(output_dir, groups)
  manifest = {
      'format_version': FORMAT_VERSION,
      'source': {
          'bids_dir': os.path.abspath(bids_dir), 'layout': dataset.layout,
          'site_column': site_column,
          'sha256': {os.path.relpath(path, bids_dir): digest
                     for s in sorted(staged, key=lambda s: s.subject.key)
                     for path, digest in sorted(s.sha256.items())},
          'inference_only': [s.key for s in dataset.inference_only],
      },
      'client_unit': options.client_unit,
      'partition': {'scheme': options.partition, 'num_clients': options.num_clients,
                    'alpha': options.alpha if options.partition != 'natural' else None,
                    'seed': options.seed},
      'image_size': options.image_size,
      'compression': options.compression,
      'preprocessing': {
          **preprocessing.describe(options.image_size, options.spacing_mm, dataset.channels,
                                   options.normalization),
          'mask_labels': list(dataset.mask_labels),
          'training_background_ratio': options.background_ratio,
      },
      'split': {'unit': 'subject',
                'within': 'site' if options.client_unit == 'subject' else 'client',
                'holdout_fraction': options.holdout_fraction,
                'validation_fraction': options.validation_fraction,
                'test_sites': sorted(options.test_sites), 'seed': options.seed},
      **groups,
      'skipped': sorted(skipped, key=lambda e: e['subject_id']),
  }
  json_files.write_json_atomically(manifest, manifest_path, indent=2)
  return manifest


def _stage_all(dataset, options, staging_dir, num_workers, skipped) -> list[StagedSubject]:
  stage = functools.partial(_stage_or_skip, mask_labels=dataset.mask_labels,
                            options=options, staging_dir=staging_dir)
  progress = tqdm.tqdm(total=len(dataset.subjects), desc='subjects', unit='subject')
  staged = []
  with progress, multiprocessing.get_context('spawn').Pool(num_workers) if num_workers > 1 \
      else _InProcess() as pool:
    for result in pool.imap(stage, dataset.subjects):
      progress.update()
      if isinstance(result, StagedSubject):
        staged.append(result)
      else:
        skipped.append(result)
        tqdm.tqdm.write(f'skipped {result["subject_id"]}: {result["reason"]}')
  return staged


class _InProcess:
  """The Pool interface, run in this process."""

  def __enter__(self):
    return self

  def __exit__(self, *unused):
    return False

  def imap(self, function, items):
    return map(function, items)


def _write_group(output_dir, relative_path, members, *, options, balance) -> dict:
  path = os.path.join(output_dir, relative_path)
  members = sorted(members, key=lambda s: s.subject.key)
  num_examples = 0
  with tf.io.TFRecordWriter(path + '.tmp', options.compression or None) as writer:
    for staged in members:
      keep = (chosen_slices(staged, options.background_ratio, options.seed) if balance
              else range(len(staged.lesion_flags)))
      keep = set(keep)
      for i, record in enumerate(tfrecords.iterate_records(staged.path)):
        if i in keep:
          writer.write(record)
      num_examples += len(keep)
  os.replace(path + '.tmp', path)
  return {
      'file': relative_path,
      'num_examples': num_examples,
      'num_subjects': len(members),
      'subjects': [s.subject.key for s in members],
      'sites': sorted({s.subject.site for s in members}),
  }


def _remove_stale_files(output_dir, groups):
  """Deletes client files of an earlier conversion into the same folder."""
  current = {os.path.basename(g['file']) for g in groups['clients'].values()}
  clients_dir = os.path.join(output_dir, 'clients')
  for name in os.listdir(clients_dir):
    if name not in current:
      os.remove(os.path.join(clients_dir, name))
  for split in ('validation', 'test_sites'):
    path = os.path.join(output_dir, f'{split}.tfrecord')
    if split not in groups and os.path.exists(path):
      os.remove(path)


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
                     f'is not {FORMAT_VERSION}; prepare the data again')
  return manifest
