"""Shared fixtures: a tiny synthetic ATLAS tree and its conversion."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # pylint: disable=g-import-not-at-top

from data_pipelines import conversion
from data_pipelines import synthetic

TINY_IMAGE_SIZE = 32
TINY_OPTIONS = conversion.ConversionOptions(
    image_size=TINY_IMAGE_SIZE, spacing_mm=6.0, client_unit='site',
    holdout_fraction=0.34, background_ratio=1.0, seed=0)


@pytest.fixture(scope='session')
def tiny_tree(tmp_path_factory):
  """3 sites x 3 subjects at 6 mm: about 33 x 40 x 33 voxels per volume."""
  root = str(tmp_path_factory.mktemp('bids'))
  subjects = synthetic.synthesize_tree(
      root, num_sites=3, subjects_per_site=3, seed=7, voxel_size_mm=6)
  return root, subjects


@pytest.fixture(scope='session')
def tiny_prepared(tiny_tree, tmp_path_factory):
  """The tiny tree, one client per site, a third held out, lesion slices balanced."""
  output = str(tmp_path_factory.mktemp('prepared'))
  manifest = conversion.prepare_dataset(tiny_tree[0], output, TINY_OPTIONS)
  return output, manifest


@pytest.fixture(scope='session')
def layout_trees(tmp_path_factory):
  """Tiny ISLES'22 and BraTS trees: 2 sites x 2 subjects each, 6 mm."""
  trees = {}
  for layout in ('isles22', 'brats'):
    root = str(tmp_path_factory.mktemp(layout))
    trees[layout] = (root, synthetic.synthesize_tree(
        root, layout=layout, num_sites=2, subjects_per_site=2, seed=3, voxel_size_mm=6))
  return trees
