"""Volume metrics against hand-computed masks, and slices put back into volumes."""

import numpy as np
import pytest
import tensorflow as tf

from tff_stroke import evaluation
from tff_stroke import segmentation_metrics


def _two_lesions():
  truth = np.zeros((10, 10, 10), bool)
  truth[1:3, 1:3, 1:3] = True  # lesion A: 8 voxels
  truth[6:9, 6:9, 6:9] = True  # lesion B: 27 voxels
  return truth


def test_metrics_on_known_components():
  truth = _two_lesions()
  predicted = np.zeros_like(truth)
  predicted[6:9, 6:9, 6:8] = True  # 18 voxels inside B
  predicted[0, 9, 9] = True  # one spurious voxel
  predicted[4, 4, 4] = True  # another spurious component
  metrics = segmentation_metrics.subject_metrics(predicted, truth, voxel_volume_ml=0.5)
  # Voxels: TP 18, FP 2, FN 17.
  assert metrics['dice'] == pytest.approx(36 / (36 + 2 + 17))
  assert metrics['iou'] == pytest.approx(18 / (18 + 2 + 17))
  # Lesions: B detected, A missed, 2 spurious -> F1 = 2 / (2 + 1 + 2).
  assert (metrics['true_lesions'], metrics['detected_lesions'],
          metrics['spurious_lesions']) == (2, 1, 2)
  assert metrics['lesion_f1'] == pytest.approx(0.4)
  # Predicted 20 voxels, true 35: 15 voxels of 0.5 ml.
  assert metrics['abs_volume_difference_ml'] == pytest.approx(7.5)
  assert metrics['lesion_volume_ml'] == pytest.approx(17.5)


def test_diagonal_voxels_are_one_lesion_and_empty_cases_score_one():
  truth = np.zeros((4, 4, 4), bool)
  truth[0, 0, 0] = truth[1, 1, 1] = True
  assert segmentation_metrics.lesion_detection_counts(truth, truth) == (1, 0, 0)
  empty = np.zeros_like(truth)
  metrics = segmentation_metrics.subject_metrics(empty, empty, 1.0)
  assert metrics['dice'] == metrics['iou'] == metrics['lesion_f1'] == 1.0
  assert segmentation_metrics.subject_metrics(truth, empty, 1.0)['lesion_f1'] == 0.0


def test_summaries_are_means_over_subjects_per_site():
  per_subject = {
      'a': {'site': 'R001', 'dice': 1.0, 'iou': 1.0, 'lesion_f1': 1.0,
            'abs_volume_difference_ml': 0.0},
      'b': {'site': 'R002', 'dice': 0.5, 'iou': 0.2, 'lesion_f1': 0.0,
            'abs_volume_difference_ml': 4.0},
      'c': {'site': 'R002', 'dice': 0.0, 'iou': 0.0, 'lesion_f1': 1.0,
            'abs_volume_difference_ml': 2.0},
  }
  summary = segmentation_metrics.summarize(per_subject)
  assert summary['per_site']['R002'] == {
      'num_subjects': 2, 'dice': 0.25, 'iou': 0.1, 'lesion_f1': 0.5,
      'abs_volume_difference_ml': 3.0}
  assert summary['overall']['dice'] == pytest.approx(0.5)
  assert summary['overall']['num_subjects'] == 3


def test_evaluate_subjects_stacks_slices_into_volumes():
  # The "model" predicts the image itself. Subject b has a lesion spanning
  # slices 3 and 4 (one 3D component) that is found on slice 3 only, and a
  # false positive on slice 7: 2 slices apart, so a second component.
  masks = np.zeros([4, 4, 4, 1], np.float32)
  images = np.zeros_like(masks)
  masks[0, 0, :2] = 1.0
  images[0] = masks[0]
  masks[1, 1, :2] = 1.0
  masks[2, 1, :1] = 1.0
  images[1, 1, :2] = 1.0
  images[3, 2, 2] = 1.0
  dataset = tf.data.Dataset.from_tensor_slices({
      'image': images, 'mask': masks, 'slice_index': [5, 3, 4, 7],
      'subject_id': [b'a', b'b', b'b', b'b'],
      'site': [b'R001', b'R002', b'R002', b'R002']})
  identity = tf.keras.Sequential([tf.keras.layers.Lambda(lambda x: x)])
  volumes = evaluation.predict_volumes(identity, dataset, batch_size=3)
  assert volumes['b'][1].shape == (4, 4, 8)
  result = evaluation.evaluate_subjects(identity, dataset, spacing_mm=2.0, batch_size=3)
  assert result['per_subject']['a']['dice'] == 1.0
  b = result['per_subject']['b']
  # b: TP 2, FP 1, FN 1 -> Dice 4/6; 1 lesion detected, 1 spurious.
  assert b['dice'] == pytest.approx(4 / 6)
  assert b['lesion_f1'] == pytest.approx(2 / 3)
  assert b['abs_volume_difference_ml'] == 0.0
  assert result['voxel_volume_ml'] == pytest.approx(0.008)
  assert result['per_site']['R002']['num_subjects'] == 1
  assert result['overall']['dice'] == pytest.approx((1 + 4 / 6) / 2)


def test_held_out_sites_are_evaluated_apart(tiny_tree, tmp_path):
  import dataclasses  # pylint: disable=g-import-not-at-top
  from data_pipelines import conversion  # pylint: disable=g-import-not-at-top
  from tff_stroke import models  # pylint: disable=g-import-not-at-top
  from tff_stroke import run_export  # pylint: disable=g-import-not-at-top
  from tests.conftest import TINY_OPTIONS  # pylint: disable=g-import-not-at-top
  manifest = conversion.prepare_dataset(
      tiny_tree[0], str(tmp_path), dataclasses.replace(TINY_OPTIONS, test_sites=('R003',)))
  result = run_export.evaluate_holdout(models.build_unet(32, base_filters=4, depth=2),
                                       str(tmp_path), manifest)
  assert sorted(result['held_out_subjects']['per_site']) == ['R001', 'R002']
  assert sorted(result['held_out_sites']['per_site']) == ['R003']
  assert result['held_out_sites']['overall']['num_subjects'] == 3
  summary = run_export.evaluation_summary(result)
  assert summary['held_out_sites_subjects'] == 3 and summary['holdout_subjects'] == 2
