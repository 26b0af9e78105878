"""The pre-round shard check on real TFRecord files, run by TFF's local executor."""

import os
import shutil

import pytest

from tff_stroke import execution
from tff_stroke import experiment
from tff_stroke import shard_check


@pytest.fixture(scope='module')
def damaged_copy(tiny_prepared, tmp_path_factory):
  """The tiny folder with R001 intact, R002 missing and R003 truncated mid-record."""
  data_dir, manifest = tiny_prepared
  copy = str(tmp_path_factory.mktemp('damaged'))
  shutil.copytree(data_dir, copy, dirs_exist_ok=True)
  os.remove(os.path.join(copy, 'clients', 'R002.tfrecord'))
  path = os.path.join(copy, 'clients', 'R003.tfrecord')
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:len(data) // 2])
  return copy, manifest


@pytest.fixture(scope='module')
def check(damaged_copy):
  copy, manifest = damaged_copy
  with execution.local_cpp_context():
    yield shard_check.ShardCheck(
        {c: os.path.join(copy, e['file']) for c, e in manifest['clients'].items()},
        {c: e['num_examples'] for c, e in manifest['clients'].items()},
        manifest['compression'], experiment.KEY_SEPARATOR)


def test_intact_shards_pass_and_damaged_ones_are_explained(check, damaged_copy):
  manifest = damaged_copy[1]
  failures = check.failures(['R001|4', 'R002|4', 'R003|4'])
  assert sorted(failures) == ['R002', 'R003']
  assert failures['R002'].endswith('R002.tfrecord is missing on its worker')
  intact = failures['R003'].split(': ')[1].split(' intact')[0]
  assert int(intact) < manifest['clients']['R003']['num_examples']
  assert f'the manifest lists {manifest["clients"]["R003"]["num_examples"]}' in failures['R003']


def test_a_round_of_intact_shards_has_no_failures(check):
  assert check.failures(['R001|1']) == {}
  assert check.failures([]) == {}
