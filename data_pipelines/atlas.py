"""The ATLAS R2.0 layout (Liew et al. 2022): T1w in MNI152NLin2009aSym.

Cohort folders are the natural sites:
  ROOT/Training/R001/sub-r001s001/ses-1/anat/
      sub-r001s001_ses-1_space-MNI152NLin2009aSym_T1w.nii.gz
      sub-r001s001_ses-1_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz
  ROOT/Testing/R001/...: T1w only (no masks), for inference.
"""

import glob
import os

from data_pipelines.subjects import Subject

NAME = 'atlas2'
CHANNELS = ('T1w',)
T1W_SUFFIX = '_space-MNI152NLin2009aSym_T1w.nii.gz'
MASK_SUFFIX = '_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz'
LAYOUT_HELP = 'ROOT/Training/R001/sub-r001s001/ses-1/anat/*' + T1W_SUFFIX


def t1w_path(root: str, site: str, subject_id: str, session: str) -> str:
  return os.path.join(root, 'Training', site, subject_id, session, 'anat',
                      f'{subject_id}_{session}{T1W_SUFFIX}')


def mask_path(root: str, site: str, subject_id: str, session: str) -> str:
  return os.path.join(root, 'Training', site, subject_id, session, 'anat',
                      f'{subject_id}_{session}{MASK_SUFFIX}')


def recognizes(root: str) -> bool:
  return bool(glob.glob(os.path.join(root, 'Training', '*', 'sub-*')))


def discover(root: str, split: str = 'Training') -> list[Subject]:
  """Every subject-session of `split` with a T1w image, sorted by site and id.

  Training subjects carry their mask path (whether or not it exists; loading
  reports a missing one). Testing subjects have none.

  Raises:
    FileNotFoundError: `root/Training` does not exist or holds no T1w image.
  """
  folder = os.path.join(root, split)
  pattern = os.path.join(folder, '*', 'sub-*', 'ses-*', 'anat', '*' + T1W_SUFFIX)
  subjects = []
  for image in sorted(glob.glob(pattern)):
    session_dir = os.path.dirname(os.path.dirname(image))
    subject_dir = os.path.dirname(session_dir)
    site = os.path.basename(os.path.dirname(subject_dir))
    subject_id, session = os.path.basename(subject_dir), os.path.basename(session_dir)
    mask = mask_path(root, site, subject_id, session) if split == 'Training' else None
    subjects.append(Subject(site, subject_id, session, (('T1w', image),), mask))
  if not subjects and split == 'Training':
    raise FileNotFoundError(f'{folder}: no file matches {pattern}. Expected an '
                            f'ATLAS R2.0 tree: {LAYOUT_HELP}')
  return subjects
