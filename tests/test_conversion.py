"""Conversion into client TFRecords and a manifest: splits, partitions, writing."""

import dataclasses
import hashlib
import os

import pytest
import tensorflow as tf

from data_pipelines import client_data
from data_pipelines import conversion
from data_pipelines import partitions
from data_pipelines import tfrecords
from tests.conftest import TINY_IMAGE_SIZE
from tests.conftest import TINY_OPTIONS


def _count(path, compression=''):
  return sum(1 for _ in tf.data.TFRecordDataset(path, compression_type=compression))


def _folder_digest(folder):
  digest = hashlib.sha256()
  for root, _, files in sorted(os.walk(folder)):
    for name in sorted(files):
      digest.update(name.encode())
      with open(os.path.join(root, name), 'rb') as f:
        digest.update(f.read())
  return digest.hexdigest()


def test_manifest_matches_files(tiny_prepared, tiny_tree):
  output, manifest = tiny_prepared
  assert manifest == conversion.load_manifest(output)
  assert manifest['format_version'] == conversion.FORMAT_VERSION
  assert sorted(manifest['clients']) == ['R001', 'R002', 'R003']
  assert manifest['client_unit'] == 'site'
  assert manifest['partition'] == {'scheme': 'natural', 'num_clients': None, 'alpha': None,
                                   'seed': 0}
  assert manifest['image_size'] == TINY_IMAGE_SIZE
  assert manifest['skipped'] == []
  for client in manifest['clients'].values():
    assert client['num_examples'] == _count(os.path.join(output, client['file'])) > 0
    assert client['num_subjects'] == 2  # 3 subjects, one held out per site
  holdout = manifest['holdout']
  assert len(holdout['subjects']) == 3
  train_subjects = {s for c in manifest['clients'].values() for s in c['subjects']}
  assert not train_subjects & set(holdout['subjects'])
  assert holdout['num_examples'] == _count(os.path.join(output, holdout['file']))
  # A sha256 of every source file: each subject's T1w and mask.
  root, subjects = tiny_tree
  assert len(manifest['source']['sha256']) == 2 * len(subjects)
  first = os.path.relpath(subjects[0].image_paths[0], root)
  with open(subjects[0].image_paths[0], 'rb') as f:
    assert manifest['source']['sha256'][first] == hashlib.sha256(f.read()).hexdigest()
  assert manifest['preprocessing']['spacing_mm'] == 6.0


def test_client_data_and_pooled_dataset(tiny_prepared):
  output, manifest = tiny_prepared
  data = client_data.build_client_data(output, manifest)
  assert sorted(data.client_ids) == ['R001', 'R002', 'R003']
  example = next(iter(data.create_tf_dataset_for_client('R002')))
  assert example['image'].shape == (TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 1)
  assert set(tf.unique(tf.reshape(example['mask'], [-1]))[0].numpy()) <= {0.0, 1.0}
  assert example['site'].numpy() == b'R002'
  all_masks = tfrecords.read_slices(os.path.join(output, manifest['clients']['R002']['file']),
                                    TINY_IMAGE_SIZE)
  assert sum(float(tf.reduce_sum(e['mask'])) for e in all_masks) > 0
  pooled = client_data.pooled_dataset(output, manifest)
  assert sum(1 for _ in pooled) == sum(c['num_examples'] for c in manifest['clients'].values())


def test_rerun_gives_the_same_bytes_and_interrupted_runs_have_no_manifest(
    tiny_tree, tmp_path, monkeypatch):
  first, second = str(tmp_path / 'a'), str(tmp_path / 'b')
  options = dataclasses.replace(TINY_OPTIONS, compression='GZIP')
  conversion.prepare_dataset(tiny_tree[0], first, options)
  conversion.prepare_dataset(tiny_tree[0], second, options, num_workers=2)
  assert _folder_digest(first) == _folder_digest(second)
  conversion.prepare_dataset(tiny_tree[0], first, options)  # again, into the same folder
  assert _folder_digest(first) == _folder_digest(second)
  assert sorted(os.listdir(first)) == ['clients', 'holdout.tfrecord', 'manifest.json']

  def fail(*unused, **unused_kwargs):
    raise KeyboardInterrupt
  monkeypatch.setattr(conversion, '_write_group', fail)
  with pytest.raises(KeyboardInterrupt):
    conversion.prepare_dataset(tiny_tree[0], first, options)
  with pytest.raises(FileNotFoundError, match='unfinished conversion'):
    conversion.load_manifest(first)
  assert not [n for n in os.listdir(first) if n.startswith('.staging')]


@pytest.mark.parametrize('changes', [
    {'client_unit': 'subject'},
    {'partition': 'dirichlet', 'num_clients': 2, 'alpha': 0.3},
    {'partition': 'quantity', 'num_clients': 2, 'alpha': 1.0, 'validation_fraction': 0.2},
    {'test_sites': ('R003',), 'holdout_fraction': 0.0},
])
def test_partitions_and_splits_never_share_a_subject(tiny_tree, tmp_path, changes):
  options = dataclasses.replace(TINY_OPTIONS, **changes)
  manifest = conversion.prepare_dataset(tiny_tree[0], str(tmp_path), options)
  groups = [c['subjects'] for c in manifest['clients'].values()]
  groups += [manifest[s]['subjects'] for s in ('holdout', 'validation', 'test_sites')
             if s in manifest]
  every = [s for g in groups for s in g]
  assert len(every) == len(set(every)) == len(tiny_tree[1])
  assert manifest['partition']['scheme'] == options.partition
  if options.partition != 'natural':
    assert sorted(manifest['clients']) == ['client_000', 'client_001']
  if options.test_sites:
    assert manifest['test_sites']['sites'] == ['R003']
    assert all('R003' not in c['sites'] for c in manifest['clients'].values())
  if options.client_unit == 'subject':
    assert all(len(c['subjects']) == 1 for c in manifest['clients'].values())
  data = client_data.build_client_data(str(tmp_path), manifest)
  assert sorted(data.client_ids) == sorted(manifest['clients'])


def test_dirichlet_partition_skews_lesion_load():
  import numpy as np  # pylint: disable=g-import-not-at-top
  loads = list(range(300))
  rng = np.random.default_rng(0)
  skewed = partitions.dirichlet_partition(loads, 3, 0.05, rng)
  even = partitions.dirichlet_partition(loads, 3, 1000.0, rng)
  bins = np.asarray(partitions.lesion_load_bins(loads))

  def spread(assignment):  # How far each client's bin mix is from the overall mix.
    assignment = np.asarray(assignment)
    return np.mean([np.abs(np.bincount(bins[assignment == c], minlength=3)
                           / max(1, (assignment == c).sum()) - 1 / 3).sum() for c in range(3)])
  assert spread(skewed) > 3 * spread(even)
  assert sorted(set(skewed)) == [0, 1, 2]
  sizes = np.bincount(partitions.quantity_partition(300, 4, 0.2, rng))
  assert sizes.sum() == 300 and sizes.min() >= 1 and sizes.max() > 2 * sizes.min()
  parts = partitions.split_by_subject(list('abcdefghij'), [0.2, 0.1], rng)
  assert [len(p) for p in parts] == [2, 1, 7]
  assert partitions.split_by_subject(['a'], [0.5], rng) == [[], ['a']]


@pytest.mark.parametrize('changes, message', [
    ({'client_unit': 'hospital'}, 'client_unit'),
    ({'partition': 'dirichlet'}, 'needs client_unit site and num_clients'),
    ({'num_clients': 2}, 'natural partition'),
    ({'holdout_fraction': 0.6, 'validation_fraction': 0.5}, 'sum below 1'),
    ({'compression': 'zip'}, 'compression'),
    ({'test_sites': ('R009',)}, r"test_sites \['R009'\] are not sites"),
    ({'partition': 'quantity', 'num_clients': 50}, 'num_clients must be between'),
])
def test_bad_options_are_refused(tiny_tree, tmp_path, changes, message):
  with pytest.raises(ValueError, match=message):
    conversion.prepare_dataset(tiny_tree[0], str(tmp_path),
                               dataclasses.replace(TINY_OPTIONS, **changes))


def test_missing_manifest_and_unknown_folder(tmp_path):
  with pytest.raises(FileNotFoundError, match='unfinished conversion'):
    conversion.load_manifest(str(tmp_path))
  with pytest.raises(FileNotFoundError, match='matches no known layout'):
    conversion.prepare_dataset(str(tmp_path), str(tmp_path / 'o'), TINY_OPTIONS)


def test_records_read_without_tf_equal_tf_data(tiny_prepared):
  output, manifest = tiny_prepared
  path = os.path.join(output, manifest['clients']['R001']['file'])
  assert list(tfrecords.iterate_records(path)) == list(
      tf.data.TFRecordDataset(path).as_numpy_iterator())
