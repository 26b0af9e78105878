"""Discovery of subjects in an ATLAS R2.0 BIDS tree.

Layout (ATLAS R2.0, Liew et al. 2022), cohort folders are the natural sites:
  ROOT/Training/R001/sub-r001s001/ses-1/anat/
      sub-r001s001_ses-1_space-MNI152NLin2009aSym_T1w.nii.gz
      sub-r001s001_ses-1_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz
"""

import dataclasses
import glob
import os

T1W_SUFFIX = '_space-MNI152NLin2009aSym_T1w.nii.gz'
MASK_SUFFIX = '_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz'


@dataclasses.dataclass(frozen=True)
class Subject:
  """One subject-session with its image and lesion mask paths."""
  site: str
  subject_id: str
  session: str
  image_path: str
  mask_path: str


def t1w_path(root: str, site: str, subject_id: str, session: str) -> str:
  return os.path.join(_anat_dir(root, site, subject_id, session),
                      f'{subject_id}_{session}{T1W_SUFFIX}')


def mask_path(root: str, site: str, subject_id: str, session: str) -> str:
  return os.path.join(_anat_dir(root, site, subject_id, session),
                      f'{subject_id}_{session}{MASK_SUFFIX}')


def _anat_dir(root, site, subject_id, session):
  return os.path.join(root, 'Training', site, subject_id, session, 'anat')


def discover_subjects(root: str) -> list[Subject]:
  """Lists every subject-session with a T1w image, sorted by site and id.

  A missing mask is not checked here; loading reports it per subject.

  Raises:
    FileNotFoundError: `root/Training` does not exist or holds no T1w image.
  """
  training = os.path.join(root, 'Training')
  if not os.path.isdir(training):
    raise FileNotFoundError(
        f'{training}: not found. Expected an ATLAS R2.0 tree: '
        'ROOT/Training/R001/sub-r001s001/ses-1/anat/*' + T1W_SUFFIX)
  pattern = os.path.join(training, '*', 'sub-*', 'ses-*', 'anat', '*' + T1W_SUFFIX)
  subjects = []
  for image in sorted(glob.glob(pattern)):
    anat = os.path.dirname(image)
    session_dir = os.path.dirname(anat)
    subject_dir = os.path.dirname(session_dir)
    site = os.path.basename(os.path.dirname(subject_dir))
    subject_id = os.path.basename(subject_dir)
    session = os.path.basename(session_dir)
    subjects.append(Subject(site, subject_id, session, image,
                            mask_path(root, site, subject_id, session)))
  if not subjects:
    raise FileNotFoundError(f'{training}: no file matches {pattern}')
  return subjects
