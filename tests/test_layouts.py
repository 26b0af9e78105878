"""Readers of the ATLAS R2.0, ISLES'22 and BraTS layouts, and sites from participants.tsv."""

import os
import shutil

import nibabel as nib
import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import client_data
from data_pipelines import conversion
from data_pipelines import layouts
from data_pipelines import nifti
from tests.conftest import TINY_OPTIONS


def test_auto_recognises_each_layout(tiny_tree, layout_trees):
  assert layouts.detect_layout(tiny_tree[0]) == 'atlas2'
  for layout, (root, _) in layout_trees.items():
    assert layouts.detect_layout(root) == layout
  with pytest.raises(FileNotFoundError, match='Training'):
    layouts.read_dataset(layout_trees['brats'][0], 'atlas2')


@pytest.mark.parametrize('layout, channels', [
    ('isles22', ['DWI', 'ADC', 'FLAIR']),
    ('brats', ['t1', 't1ce', 't2', 'flair']),
])
def test_multimodal_layouts_convert_to_channels(layout_trees, tmp_path, layout, channels):
  root, subjects = layout_trees[layout]
  dataset = layouts.read_dataset(root)
  assert {s.site for s in dataset.subjects} == {layout}  # The layout names no site.
  manifest = conversion.prepare_dataset(root, str(tmp_path), TINY_OPTIONS, site_column='site')
  assert manifest['source']['layout'] == layout
  assert manifest['preprocessing']['channels'] == channels
  assert sorted(manifest['clients']) == ['R001', 'R002']
  assert manifest['skipped'] == []
  assert len(manifest['source']['sha256']) == len(subjects) * (len(channels) + 1)
  slices = list(client_data.split_dataset(str(tmp_path), manifest, 'holdout'))
  assert slices[0]['image'].shape == (32, 32, len(channels))
  assert sum(float(tf.reduce_sum(s['mask'])) for s in slices) > 0
  assert {float(v) for s in slices for v in np.unique(s['mask'])} <= {0.0, 1.0}


def test_isles_flair_is_resampled_onto_the_dwi_grid(layout_trees):
  subject = layout_trees['isles22'][1][0]
  dwi, _, flair = subject.image_paths
  assert nib.load(flair).shape != nib.load(dwi).shape
  volume = nifti.load_channels(subject.image_paths)
  assert volume.data.shape == nifti.load_volume(dwi).data.shape + (3,)
  np.testing.assert_allclose(volume.affine, nifti.load_volume(dwi).affine)
  brain = volume.data[..., 0] > 0.2 * volume.data[..., 0].max()
  assert np.corrcoef(volume.data[..., 0][brain], volume.data[..., 2][brain])[0, 1] != 0
  assert volume.data[..., 2][brain].mean() > 0  # FLAIR content landed inside the brain.


def test_brats_labels_collapse_to_whole_tumour(layout_trees):
  segs = {s: np.asarray(nib.load(s.mask_path).dataobj) for s in layout_trees['brats'][1]}
  assert all(set(np.unique(seg)) <= {0, 1, 2, 4} for seg in segs.values())
  subject, seg = max(segs.items(), key=lambda item: len(np.unique(item[1])))
  assert len(np.unique(seg)) > 2
  image = nifti.load_channels(subject.image_paths)
  mask = nifti.load_mask(subject.mask_path, image, image_path='t1', labels=(0, 1, 2, 4))
  assert mask.sum() == (seg > 0).sum()
  with pytest.raises(nifti.NiftiError, match='where only'):
    nifti.load_mask(subject.mask_path, image, image_path='t1', labels=(0, 1))


def test_site_column_and_subjects_it_does_not_name(tiny_tree, tmp_path):
  root = str(tmp_path / 'bids')
  shutil.copytree(tiny_tree[0], root)
  with open(os.path.join(root, 'participants.tsv')) as f:
    rows = f.read().splitlines()
  with open(os.path.join(root, 'participants.tsv'), 'w') as f:
    f.write('participant_id\tsite\tscanner\n')
    for i, row in enumerate(rows[1:-1]):
      f.write(f'{row}\t{"A" if i % 2 else "B"}\n')
  dataset = layouts.read_dataset(root, site_column='scanner')
  assert {s.site for s in dataset.subjects} == {'A', 'B'}
  assert [e['subject_id'] for e in dataset.skipped] == [tiny_tree[1][-1].key]
  assert "no 'scanner' value" in dataset.skipped[0]['reason']
  with pytest.raises(ValueError, match="'hospital'"):
    layouts.read_dataset(root, site_column='hospital')


def test_atlas_testing_split_is_listed_for_inference_only(tiny_tree, tmp_path):
  root = str(tmp_path / 'bids')
  shutil.copytree(tiny_tree[0], root)
  subject = tiny_tree[1][0]
  test_image = os.path.join(root, 'Testing', 'R001', 'sub-r001s099', 'ses-1', 'anat',
                            'sub-r001s099_ses-1_space-MNI152NLin2009aSym_T1w.nii.gz')
  os.makedirs(os.path.dirname(test_image))
  shutil.copy(subject.image_paths[0], test_image)
  dataset = layouts.read_dataset(root)
  assert [s.key for s in dataset.inference_only] == ['sub-r001s099_ses-1']
  assert dataset.inference_only[0].mask_path is None
  assert len(dataset.subjects) == len(tiny_tree[1])


@pytest.mark.e2e
def test_a_multimodal_federated_round_trains_on_all_channels(layout_trees, tmp_path):
  from tff_stroke import execution  # pylint: disable=g-import-not-at-top
  from tff_stroke import experiment  # pylint: disable=g-import-not-at-top
  root = layout_trees['isles22'][0]
  manifest = conversion.prepare_dataset(root, str(tmp_path), TINY_OPTIONS, site_column='site')
  config = experiment.ExperimentConfig(
      data_dir=str(tmp_path), root_output_dir=str(tmp_path), experiment_name='mm',
      total_rounds=1, clients_per_round=2.0, noise_multiplier=0.0, delta=1e-5, aggregator='none',
      sampling='all', base_filters=4, unet_depth=2, batch_size=4)
  data = client_data.build_client_data(str(tmp_path), manifest)
  with execution.local_cpp_context():
    process = experiment.build_learning_process(
        config, manifest['image_size'], client_data.num_channels(manifest))
    state = process.initialize()
    datasets = [data.create_tf_dataset_for_client(c).map(lambda s: (s['image'], s['mask']))
                .batch(4) for c in sorted(manifest['clients'])]
    output = process.next(state, datasets)
    kernel = process.get_model_weights(output.state).trainable[0]
    initial_kernel = process.get_model_weights(state).trainable[0]
  assert kernel.shape[2] == 3  # The first convolution sees DWI, ADC and FLAIR.
  assert not np.allclose(kernel, initial_kernel)
