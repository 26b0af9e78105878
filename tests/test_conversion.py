"""Conversion of an ATLAS tree into client TFRecords and a manifest."""

import os
import shutil

import pytest
import tensorflow as tf

from data_pipelines import client_data
from data_pipelines import conversion
from data_pipelines import tfrecords
from tests.conftest import TINY_IMAGE_SIZE


def _count(path):
  return sum(1 for _ in tf.data.TFRecordDataset(path))


def test_manifest_matches_files(tiny_prepared):
  output, manifest = tiny_prepared
  assert manifest == conversion.load_manifest(output)
  assert sorted(manifest['clients']) == ['R001', 'R002', 'R003']
  assert manifest['client_unit'] == 'site'
  assert manifest['image_size'] == TINY_IMAGE_SIZE
  assert manifest['skipped'] == []
  for client in manifest['clients'].values():
    assert client['num_examples'] == _count(os.path.join(output, client['file'])) > 0
    assert len(client['subjects']) == 2  # 3 subjects, one held out per site
  holdout = manifest['holdout']
  assert len(holdout['subjects']) == 3
  train_subjects = {s for c in manifest['clients'].values() for s in c['subjects']}
  assert not train_subjects & set(holdout['subjects'])
  assert holdout['num_examples'] == _count(os.path.join(output, holdout['file']))


def test_client_data_yields_parsed_slices(tiny_prepared):
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


def test_bad_subjects_are_skipped_and_named(tiny_tree, tmp_path):
  root = str(tmp_path / 'bids')
  shutil.copytree(tiny_tree[0], root)
  subjects = tiny_tree[1]
  corrupt, maskless = subjects[1], subjects[4]
  with open(corrupt.image_path.replace(tiny_tree[0], root), 'wb') as f:
    f.write(b'truncated')
  os.remove(maskless.mask_path.replace(tiny_tree[0], root))
  manifest = conversion.prepare_dataset(
      root, str(tmp_path / 'out'), client_unit='subject',
      image_size=TINY_IMAGE_SIZE, holdout_fraction=0.0)
  skipped = {s['subject_id']: s['reason'] for s in manifest['skipped']}
  assert set(skipped) == {corrupt.subject_id, maskless.subject_id}
  assert 'cannot read NIfTI' in skipped[corrupt.subject_id]
  assert os.path.basename(corrupt.image_path) in skipped[corrupt.subject_id]
  assert os.path.basename(maskless.mask_path) in skipped[maskless.subject_id]
  assert len(manifest['clients']) == 7  # one client per remaining subject
  assert corrupt.subject_id not in manifest['clients']


def test_missing_manifest_and_bad_options(tmp_path, tiny_tree):
  with pytest.raises(FileNotFoundError, match='unfinished conversion'):
    conversion.load_manifest(str(tmp_path))
  with pytest.raises(ValueError, match='client_unit'):
    conversion.prepare_dataset(tiny_tree[0], str(tmp_path), client_unit='hospital',
                               image_size=32)
  with pytest.raises(FileNotFoundError, match='Training'):
    conversion.prepare_dataset(str(tmp_path), str(tmp_path / 'o'), client_unit='site',
                               image_size=32)


def test_split_holdout_is_per_site_and_seeded(tiny_tree):
  subjects = tiny_tree[1]
  train, holdout = conversion.split_holdout(subjects, 0.34, seed=0)
  assert sorted(s.site for s in holdout) == ['R001', 'R002', 'R003']
  assert conversion.split_holdout(subjects, 0.34, seed=0) == (train, holdout)
  assert conversion.split_holdout(subjects, 0.0, seed=0) == (subjects, [])
