"""Every kind of bad input is skipped with its file and reason; the rest converts."""

import json
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from data_pipelines import synthetic


def _rewrite(path, transform):
  image = nib.load(path)
  data, affine = transform(np.asarray(image.get_fdata(dtype=np.float32)), image.affine.copy())
  nib.save(nib.Nifti1Image(data, affine), path)


def _truncate(path):
  with open(path, 'rb') as f:
    content = f.read()
  with open(path, 'wb') as f:
    f.write(content[:len(content) // 2])


def _text(path):
  with open(path, 'w') as f:
    f.write('not an image\n')


def _unreadable(path):
  os.remove(path)
  os.mkdir(path)  # Opening a folder fails, whoever runs the test.


def _shift(data, affine):
  affine[:3, 3] += 12.0
  return data, affine


def _with(value):
  def transform(data, affine):
    data[tuple(n // 2 for n in data.shape)] = value
    return data, affine
  return transform


# (which file, what is done to it, words the reason must contain)
CASES = {
    'truncated': ('image', _truncate, 'cannot read NIfTI'),
    'text': ('image', _text, 'cannot read NIfTI'),
    'mask_shape': ('mask', lambda p: _rewrite(p, lambda d, a: (d[:-1], a)), 'mask shape'),
    'mask_affine': ('mask', lambda p: _rewrite(p, _shift), 'mask affine differs'),
    'nan': ('image', lambda p: _rewrite(p, _with(np.nan)), 'non-finite'),
    'inf': ('image', lambda p: _rewrite(p, _with(np.inf)), 'non-finite'),
    'all_zero': ('image', lambda p: _rewrite(p, lambda d, a: (0 * d, a)), 'no foreground'),
    'four_d': ('image', lambda p: _rewrite(p, lambda d, a: (np.stack([d, d], -1), a)),
               'expected a 3D volume'),
    'missing_mask': ('mask', os.remove, 'lesion mask missing'),
    'mask_labels': ('mask', lambda p: _rewrite(p, lambda d, a: (2 * d, a)),
                    'label(s) 2 where only [0, 1]'),
    'unreadable': ('image', _unreadable, 'cannot read NIfTI'),
}


@pytest.fixture(scope='module')
def bad_tree(tmp_path_factory):
  """3 sites x 5 subjects; one bad case per subject for the first 11, plus a duplicate."""
  root = str(tmp_path_factory.mktemp('bad_bids'))
  subjects = synthetic.synthesize_tree(root, num_sites=3, subjects_per_site=5, seed=11,
                                       voxel_size_mm=6)
  expected = {}
  for (case, (which, damage, reason)), subject in zip(CASES.items(), subjects):
    path = subject.image_paths[0] if which == 'image' else subject.mask_path
    damage(path)
    expected[subject.key] = (os.path.basename(path), reason)
  # The last subject of R003 appears again in R001: the copy is skipped.
  original = subjects[-1]
  copy = os.path.join(root, 'Training', 'R001', original.subject_id)
  shutil.copytree(os.path.dirname(os.path.dirname(os.path.dirname(original.image_paths[0]))),
                  copy)
  expected[original.key] = (original.subject_id, 'duplicate subject id')
  return root, subjects, expected


def _prepare(bids_dir, output_dir, *flags):
  return subprocess.run(
      [sys.executable, '-m', 'data_pipelines.prepare', f'--bids_dir={bids_dir}',
       f'--output_dir={output_dir}', '--image_size=32', '--spacing_mm=6',
       '--holdout_fraction=0', *flags],
      capture_output=True, text=True, timeout=300, check=False,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})


def test_each_bad_subject_is_skipped_with_file_and_reason(bad_tree, tmp_path):
  root, subjects, expected = bad_tree
  result = _prepare(root, tmp_path, '--client_unit=subject', '--strict')
  assert result.returncode == 2, result.stderr
  assert 'Traceback' not in result.stderr
  with open(tmp_path / 'manifest.json') as f:
    manifest = json.load(f)
  skipped = {entry['subject_id']: entry for entry in manifest['skipped']}
  assert set(skipped) == set(expected)
  for key, (file_name, reason) in expected.items():
    assert reason in skipped[key]['reason'], (key, skipped[key])
    assert file_name in skipped[key]['file'] or file_name in skipped[key]['reason']
    assert f'skipped {key}' in result.stdout
  converted = {s.key for s in subjects} - set(expected) | {subjects[-1].key}
  assert set(manifest['clients']) == converted  # The first copy of the duplicate converts.


def test_without_strict_skips_exit_zero(bad_tree, tmp_path):
  result = _prepare(bad_tree[0], tmp_path, '--client_unit=site')
  assert result.returncode == 0, result.stderr
  assert '12 subjects skipped' in result.stdout


def test_a_folder_of_no_known_layout_is_a_clear_error(tmp_path):
  result = _prepare(tmp_path, tmp_path / 'out')
  assert result.returncode == 1
  assert 'matches no known layout' in result.stderr
  assert 'Traceback' not in result.stderr


