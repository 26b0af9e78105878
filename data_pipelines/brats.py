"""The BraTS layout: one folder per case, four modalities and a label map.

  ROOT/BraTS2021_00000/BraTS2021_00000_{t1,t1ce,t2,flair,seg}.nii.gz

Labels 1 (necrotic core), 2 (oedema) and 4 (enhancing tumour) are collapsed
into one whole-tumour mask. The dataset names no site; one may come from a
participants.tsv column keyed by case id.
"""

import glob
import os

from data_pipelines.subjects import Subject

NAME = 'brats'
CHANNELS = ('t1', 't1ce', 't2', 'flair')
MASK_LABELS = (0, 1, 2, 4)
DEFAULT_SITE = 'brats'
LAYOUT_HELP = 'ROOT/BraTS2021_00000/BraTS2021_00000_{t1,t1ce,t2,flair,seg}.nii.gz'


def case_paths(root: str, case_id: str) -> tuple[tuple[tuple[str, str], ...], str]:
  """((modality, path) for each channel, seg path) of one case."""
  folder = os.path.join(root, case_id)
  channels = tuple((name, os.path.join(folder, f'{case_id}_{name}.nii.gz'))
                   for name in CHANNELS)
  return channels, os.path.join(folder, f'{case_id}_seg.nii.gz')


def _case_folders(root: str) -> list[str]:
  return sorted(os.path.dirname(path) for path in glob.glob(os.path.join(root, '*', '*_t1.nii.gz'))
                if os.path.basename(path) == os.path.basename(os.path.dirname(path)) + '_t1.nii.gz')


def recognizes(root: str) -> bool:
  return bool(_case_folders(root))


def discover(root: str) -> list[Subject]:
  """Every case folder holding CASE_t1.nii.gz, sorted by case id.

  Raises:
    FileNotFoundError: no case folder is found.
  """
  subjects = []
  for folder in _case_folders(root):
    case_id = os.path.basename(folder)
    channels, seg = case_paths(root, case_id)
    subjects.append(Subject(DEFAULT_SITE, case_id, '', channels, seg))
  if not subjects:
    raise FileNotFoundError(f'{root}: no case folder found. Expected a BraTS-style '
                            f'tree: {LAYOUT_HELP}')
  return subjects
