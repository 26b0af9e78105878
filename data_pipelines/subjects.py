"""A subject-session to convert: its site, its image channels and its mask."""

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class Subject:
  """One subject-session of a dataset.

  Attributes:
    site: the natural site (ATLAS cohort, participants.tsv column, ...).
    subject_id: the BIDS participant id (or the BraTS case id).
    session: the BIDS session ('' where the layout has none).
    channels: (modality name, image path) pairs; the first one's grid is the
      reference the others are resampled onto.
    mask_path: the lesion mask, on the reference grid; None for inference-only
      data without masks.
  """
  site: str
  subject_id: str
  session: str
  channels: tuple[tuple[str, str], ...]
  mask_path: Optional[str]

  @property
  def key(self) -> str:
    """Unique id of the subject-session within a dataset."""
    return f'{self.subject_id}_{self.session}' if self.session else self.subject_id

  @property
  def image_paths(self) -> tuple[str, ...]:
    return tuple(path for _, path in self.channels)

  @property
  def source_paths(self) -> tuple[str, ...]:
    return self.image_paths + ((self.mask_path,) if self.mask_path else ())

  def with_site(self, site: str) -> 'Subject':
    return dataclasses.replace(self, site=site)
