"""The ISLES'22 layout (Hernandez Petzsche et al. 2022): DWI, ADC and FLAIR.

  ROOT/rawdata/sub-strokecase0001/ses-0001/dwi/sub-strokecase0001_ses-0001_dwi.nii.gz
                                          /dwi/sub-strokecase0001_ses-0001_adc.nii.gz
                                          /anat/sub-strokecase0001_ses-0001_FLAIR.nii.gz
  ROOT/derivatives/sub-strokecase0001/ses-0001/sub-strokecase0001_ses-0001_msk.nii.gz

The modalities become channels on the DWI grid (FLAIR has its own grid and is
resampled onto it). The dataset names no site; one may come from a
participants.tsv column.
"""

import glob
import os

from data_pipelines.subjects import Subject

NAME = 'isles22'
CHANNELS = ('DWI', 'ADC', 'FLAIR')
DEFAULT_SITE = 'isles22'
LAYOUT_HELP = 'ROOT/rawdata/sub-strokecase0001/ses-0001/dwi/*_dwi.nii.gz'


def channel_paths(root: str, subject_id: str, session: str) -> tuple[tuple[str, str], ...]:
  folder = os.path.join(root, 'rawdata', subject_id, session)
  stem = f'{subject_id}_{session}'
  return (('DWI', os.path.join(folder, 'dwi', f'{stem}_dwi.nii.gz')),
          ('ADC', os.path.join(folder, 'dwi', f'{stem}_adc.nii.gz')),
          ('FLAIR', os.path.join(folder, 'anat', f'{stem}_FLAIR.nii.gz')))


def mask_path(root: str, subject_id: str, session: str) -> str:
  return os.path.join(root, 'derivatives', subject_id, session,
                      f'{subject_id}_{session}_msk.nii.gz')


def recognizes(root: str) -> bool:
  return bool(glob.glob(os.path.join(root, 'rawdata', 'sub-*', 'ses-*', 'dwi')))


def discover(root: str) -> list[Subject]:
  """Every subject-session with a DWI folder, sorted by id.

  Raises:
    FileNotFoundError: no subject-session is found.
  """
  pattern = os.path.join(root, 'rawdata', 'sub-*', 'ses-*', 'dwi')
  subjects = []
  for dwi in sorted(glob.glob(pattern)):
    session_dir = os.path.dirname(dwi)
    subject_id = os.path.basename(os.path.dirname(session_dir))
    session = os.path.basename(session_dir)
    subjects.append(Subject(DEFAULT_SITE, subject_id, session,
                            channel_paths(root, subject_id, session),
                            mask_path(root, subject_id, session)))
  if not subjects:
    raise FileNotFoundError(f'{root}: no folder matches {pattern}. Expected an '
                            f"ISLES'22 tree: {LAYOUT_HELP}")
  return subjects
