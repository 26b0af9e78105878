"""Volume-level segmentation metrics as lesion segmentation is judged.

Every metric is computed on one subject's whole binary volume: Dice, IoU,
lesion-wise F1 over 3D connected components (26-connectivity), and the
absolute volume difference. Where a ratio has nothing to count (no lesion
and no prediction) it is 1: nothing was missed and nothing invented.
"""

import numpy as np
from scipy import ndimage

METRIC_NAMES = ('dice', 'iou', 'lesion_f1', 'abs_volume_difference_ml')
_CONNECTIVITY = np.ones((3, 3, 3), bool)


def _ratio(numerator: float, denominator: float) -> float:
  return 1.0 if denominator == 0 else float(numerator / denominator)


def lesion_detection_counts(predicted: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
  """(detected, missed, spurious) lesions.

  A true lesion is detected when any of its voxels is predicted; a predicted
  component is spurious when it touches no true lesion.
  """
  true_labels, num_true = ndimage.label(truth, _CONNECTIVITY)
  predicted_labels, num_predicted = ndimage.label(predicted, _CONNECTIVITY)
  detected = len(np.unique(true_labels[predicted & (true_labels > 0)]))
  matched = len(np.unique(predicted_labels[truth & (predicted_labels > 0)]))
  return detected, num_true - detected, num_predicted - matched


def subject_metrics(predicted: np.ndarray, truth: np.ndarray, voxel_volume_ml: float) -> dict:
  """Metrics of one subject from boolean volumes of the same shape."""
  predicted, truth = predicted.astype(bool), truth.astype(bool)
  tp = int(np.sum(predicted & truth))
  fp = int(np.sum(predicted & ~truth))
  fn = int(np.sum(~predicted & truth))
  detected, missed, spurious = lesion_detection_counts(predicted, truth)
  return {
      'dice': _ratio(2 * tp, 2 * tp + fp + fn),
      'iou': _ratio(tp, tp + fp + fn),
      'lesion_f1': _ratio(2 * detected, 2 * detected + missed + spurious),
      'abs_volume_difference_ml': abs(fp - fn) * voxel_volume_ml,
      'lesion_volume_ml': (tp + fn) * voxel_volume_ml,
      'true_lesions': detected + missed,
      'detected_lesions': detected,
      'spurious_lesions': spurious,
  }


def summarize(per_subject: dict) -> dict:
  """Mean of each metric over subjects, overall and per site.

  Args:
    per_subject: {subject_id: {'site': str, **subject_metrics(...)}}.
  """
  def means(rows):
    return {'num_subjects': len(rows),
            **{name: float(np.mean([r[name] for r in rows])) if rows else None
               for name in METRIC_NAMES}}

  by_site = {}
  for row in per_subject.values():
    by_site.setdefault(row['site'], []).append(row)
  return {'overall': means(list(per_subject.values())),
          'per_site': {site: means(rows) for site, rows in sorted(by_site.items())}}
