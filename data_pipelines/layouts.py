"""Which dataset layout a folder holds, and its subjects with their sites.

Layouts: `atlas2` (ATLAS R2.0), `isles22` (ISLES'22), `brats` (BraTS-style);
`auto` recognises each by its folder structure. Any of them may take its
sites from a column of ROOT/participants.tsv (`site_column`).
"""

import csv
import dataclasses
import os
from typing import Optional

from data_pipelines import atlas
from data_pipelines import brats
from data_pipelines import isles22
from data_pipelines.subjects import Subject

_MODULES = {module.NAME: module for module in (atlas, isles22, brats)}
LAYOUTS = tuple(_MODULES)
BINARY_MASK_LABELS = (0, 1)


@dataclasses.dataclass(frozen=True)
class Dataset:
  """The subjects of one dataset folder.

  Attributes:
    layout: one of LAYOUTS.
    channels: modality names, in channel order.
    mask_labels: the values a mask may hold; every non-zero one is lesion.
    subjects: subjects with masks, for training and evaluation.
    inference_only: subjects without masks (ATLAS Testing), not converted.
    skipped: subjects left out at discovery, each {'subject_id', 'site',
      'file', 'reason'}.
  """
  layout: str
  channels: tuple[str, ...]
  mask_labels: tuple[int, ...]
  subjects: list[Subject]
  inference_only: list[Subject]
  skipped: list[dict]


def detect_layout(root: str) -> str:
  """The layout of `root`.

  Raises:
    FileNotFoundError: `root` is missing or matches no known layout.
  """
  if not os.path.isdir(root):
    raise FileNotFoundError(f'{root}: no such folder')
  found = [name for name, module in _MODULES.items() if module.recognizes(root)]
  if len(found) != 1:
    expected = '; '.join(f'{name}: {m.LAYOUT_HELP}' for name, m in _MODULES.items())
    what = 'matches no known layout' if not found else f'matches several layouts {found}'
    raise FileNotFoundError(f'{root}: {what} (give --layout). Expected one of: {expected}')
  return found[0]


def read_dataset(root: str, layout: str = 'auto', site_column: Optional[str] = None) -> Dataset:
  """Discovers the subjects of `root`, with sites and duplicate ids resolved.

  Raises:
    FileNotFoundError: no dataset of the layout is found, or participants.tsv
      is missing when `site_column` is given.
    ValueError: an unknown layout, or `site_column` is not a column.
  """
  if layout == 'auto':
    layout = detect_layout(root)
  if layout not in _MODULES:
    raise ValueError(f'layout must be auto or one of {LAYOUTS}. Found {layout!r}.')
  module = _MODULES[layout]
  subjects = module.discover(root)
  inference_only = atlas.discover(root, split='Testing') if layout == atlas.NAME else []
  skipped = []
  if site_column:
    subjects, skipped = _sites_from_participants(root, subjects, site_column)
  subjects, duplicates = _drop_duplicates(subjects)
  return Dataset(layout=layout, channels=module.CHANNELS,
                 mask_labels=getattr(module, 'MASK_LABELS', BINARY_MASK_LABELS),
                 subjects=subjects, inference_only=inference_only,
                 skipped=skipped + duplicates)


def _sites_from_participants(root, subjects, column):
  path = os.path.join(root, 'participants.tsv')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: not found; --site_column needs it')
  with open(path, newline='') as f:
    rows = list(csv.DictReader(f, delimiter='\t'))
  if not rows or column not in rows[0] or 'participant_id' not in rows[0]:
    raise ValueError(f'{path}: needs columns participant_id and {column!r}; '
                     f'found {list(rows[0]) if rows else "no rows"}')
  sites = {row['participant_id']: row[column] for row in rows}
  kept, skipped = [], []
  for subject in subjects:
    site = sites.get(subject.subject_id, '').strip()
    if site and site.lower() != 'n/a':
      kept.append(subject.with_site(site))
    else:
      skipped.append(skip_entry(subject, path, f'no {column!r} value for '
                                f'{subject.subject_id} in participants.tsv'))
  return kept, skipped


def _drop_duplicates(subjects):
  first_by_key, kept, skipped = {}, [], []
  for subject in subjects:
    first = first_by_key.setdefault(subject.key, subject)
    if first is subject:
      kept.append(subject)
    else:
      skipped.append(skip_entry(subject, subject.image_paths[0],
                                f'duplicate subject id {subject.key} '
                                f'(already read from {first.image_paths[0]})'))
  return kept, skipped


def skip_entry(subject: Subject, path: str, reason: str) -> dict:
  """The manifest's record of a subject left out."""
  return {'subject_id': subject.key, 'site': subject.site, 'file': path,
          'reason': reason}
