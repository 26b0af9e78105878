"""The atlas_r2 tensorflow-datasets builder, on a tiny fake ATLAS R2.0 tree."""

import tempfile

import pytest
import tensorflow_datasets as tfds

from data_pipelines import synthetic
from data_pipelines.atlas_r2 import atlas_r2_dataset_builder


class AtlasR2Test(tfds.testing.DatasetBuilderTestCase):
  """tfds' own checks: registration, generation, features, splits."""
  DATASET_CLASS = atlas_r2_dataset_builder.Builder
  SPLITS = {'train': 4}

  @classmethod
  def setUpClass(cls):
    cls._fake_root = tempfile.TemporaryDirectory()
    synthetic.synthesize_tree(cls._fake_root.name, num_sites=2, subjects_per_site=2, seed=5,
                              voxel_size_mm=8)
    cls.EXAMPLE_DIR = cls._fake_root.name
    super().setUpClass()

  @classmethod
  def tearDownClass(cls):
    super().tearDownClass()
    cls._fake_root.cleanup()


def test_examples_are_keyed_volumes_and_a_missing_manual_dir_is_an_error(tmp_path):
  root = tmp_path / 'ATLAS_2'
  synthetic.synthesize_tree(str(root), num_sites=1, subjects_per_site=2, seed=5,
                            voxel_size_mm=8)
  builder = atlas_r2_dataset_builder.Builder(data_dir=str(tmp_path / 'tfds'))
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(root)))
  examples = list(builder.as_dataset(split='train').as_numpy_iterator())
  assert sorted(e['subject_id'] for e in examples) == [b'sub-r001s001', b'sub-r001s002']
  assert examples[0]['t1w'].shape == examples[0]['mask'].shape
  assert examples[0]['t1w'].ndim == 3 and examples[0]['mask'].max() == 1

  missing = atlas_r2_dataset_builder.Builder(data_dir=str(tmp_path / 'tfds2'))
  with pytest.raises(AssertionError, match='manual_dir/Training/R001'):
    missing.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(tmp_path / 'absent')))
