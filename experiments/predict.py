"""Segments NIfTI volumes with an exported SavedModel.

  python -m experiments.predict --saved_model=DIR --input=IN.nii.gz \
      --output=OUT_mask.nii.gz [--probabilities=OUT_prob.nii.gz] [--threshold=0.5]

With a directory as --input, every .nii/.nii.gz in it is segmented into the
--output directory as NAME_mask.nii.gz (and NAME_prob.nii.gz with
--probabilities=DIR). A file that cannot be segmented is reported and the
others go on; the exit status is then 2.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

import nibabel as nib

from data_pipelines import nifti
from tff_stroke import volume_prediction

_SAVED_MODEL = flags.DEFINE_string('saved_model', None, 'Exported SavedModel folder.')
_INPUT = flags.DEFINE_string('input', None, 'A NIfTI file, or a folder of them.')
_OUTPUT = flags.DEFINE_string('output', None, 'Mask file, or folder when --input is one.')
_PROBABILITIES = flags.DEFINE_string(
    'probabilities', None, 'Optional probability file (or folder when --input is one).')
_THRESHOLD = flags.DEFINE_float('threshold', 0.5, 'Probability above which a voxel is lesion.')
flags.mark_flags_as_required(['saved_model', 'input', 'output'])


def _jobs() -> list[tuple[str, str, str]]:
  """(input, mask output, probability output or None) per volume."""
  if not os.path.isdir(_INPUT.value):
    for output in (_OUTPUT.value, _PROBABILITIES.value):
      if output and os.path.dirname(output):
        os.makedirs(os.path.dirname(output), exist_ok=True)
    return [(_INPUT.value, _OUTPUT.value, _PROBABILITIES.value)]
  os.makedirs(_OUTPUT.value, exist_ok=True)
  if _PROBABILITIES.value:
    os.makedirs(_PROBABILITIES.value, exist_ok=True)
  jobs = []
  for path in volume_prediction.nifti_files(_INPUT.value):
    name = volume_prediction.stem(path)
    jobs.append((path, os.path.join(_OUTPUT.value, f'{name}_mask.nii.gz'),
                 _PROBABILITIES.value and os.path.join(_PROBABILITIES.value,
                                                       f'{name}_prob.nii.gz')))
  if not jobs:
    raise app.UsageError(f'{_INPUT.value}: holds no .nii or .nii.gz file')
  return jobs


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if not os.path.exists(_INPUT.value):
    raise app.UsageError(f'{_INPUT.value}: no such file or folder')
  segmenter = volume_prediction.VolumeSegmenter(_SAVED_MODEL.value)
  failed = []
  for input_path, mask_path, probability_path in _jobs():
    try:
      result = segmenter.segment(input_path, _THRESHOLD.value)
    except nifti.NiftiError as e:
      print(f'error: {e}')
      failed.append(input_path)
      continue
    nib.save(result.mask, mask_path)
    if probability_path:
      nib.save(result.probability, probability_path)
    lesion_voxels = int(result.mask.get_fdata().sum())
    print(f'{input_path} -> {mask_path} ({lesion_voxels} lesion voxels)')
  if failed:
    print(f'{len(failed)} volume(s) could not be segmented: {", ".join(failed)}')
    return 2


if __name__ == '__main__':
  app.run(main)
