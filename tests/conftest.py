"""Shared fixtures: a tiny synthetic ATLAS tree and its conversion."""

import os
import subprocess
import sys

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


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A deterministic run: noise multiplier 0 and clipped-count stddev 0 make it
# depend on its seed only, so a resumed or distributed run must reproduce it.
ZERO_NOISE_ROUNDS = 4
ZERO_NOISE_FLAGS = (f'--total_rounds={ZERO_NOISE_ROUNDS}', '--clients_per_round=2',
                    '--noise_multiplier=0', '--clipped_count_stddev=0', '--delta=1e-3',
                    '--base_filters=4', '--seed=5')


def training_command(data_dir, root, name, *flags):
  return [sys.executable, '-m', 'experiments.run_dp_fedavg', f'--data_dir={data_dir}',
          f'--root_output_dir={root}', f'--experiment_name={name}', *flags]


def run_command(command, timeout=900):
  """Runs a command from the repository root; returns its stdout, failing on error."""
  result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout)
  assert result.returncode == 0, result.stdout + result.stderr
  return result.stdout


def saved_model_weights(run_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  loaded = tf.saved_model.load(os.path.join(run_dir, 'saved_model'))
  return [v.numpy() for v in sorted(loaded.model.variables, key=lambda v: v.name)]


@pytest.fixture(scope='session')
def zero_noise_run(tiny_prepared, tmp_path_factory):
  """The deterministic run on TFF's local executor; its run folder."""
  root = str(tmp_path_factory.mktemp('zero_noise'))
  run_command(training_command(tiny_prepared[0], root, 'local', *ZERO_NOISE_FLAGS))
  return os.path.join(root, 'local')
