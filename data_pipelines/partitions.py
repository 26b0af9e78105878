"""How subjects become clients, and how each client's subjects are split.

- `natural`: one client per site (or per subject).
- `dirichlet`: subjects are binned by lesion load (tertiles) and each bin is
  spread over K clients by proportions drawn from Dirichlet(alpha): a small
  alpha gives clients with very different lesion loads (label skew).
- `quantity`: client sizes drawn from Dirichlet(alpha) (quantity skew).

Draws are redrawn until every client has at least one subject.
"""

from collections.abc import Sequence

import numpy as np

PARTITIONS = ('natural', 'dirichlet', 'quantity')
LESION_LOAD_BINS = 3
_MAX_DRAWS = 1000


def _check(num_subjects: int, num_clients: int, alpha: float) -> None:
  if num_clients < 1 or num_clients > num_subjects:
    raise ValueError(f'num_clients must be between 1 and the {num_subjects} training '
                     f'subjects. Found {num_clients}.')
  if not alpha > 0:
    raise ValueError(f'alpha must be positive. Found {alpha}.')


def _redraw_until_no_client_is_empty(draw, num_clients: int) -> list[int]:
  for _ in range(_MAX_DRAWS):
    assignment = draw()
    if len(set(assignment)) == num_clients:
      return assignment
  raise ValueError(f'no draw in {_MAX_DRAWS} gave every one of {num_clients} clients a '
                   'subject; use fewer clients or a larger alpha')


def lesion_load_bins(lesion_loads: Sequence[float]) -> list[int]:
  """The lesion-load tertile (0, 1, 2) of each subject, by rank."""
  order = np.argsort(np.asarray(lesion_loads), kind='stable')
  bins = np.empty(len(order), dtype=int)
  bins[order] = np.arange(len(order)) * LESION_LOAD_BINS // max(1, len(order))
  return bins.tolist()


def dirichlet_partition(lesion_loads: Sequence[float], num_clients: int, alpha: float,
                        rng: np.random.Generator) -> list[int]:
  """Client index of each subject: each lesion-load bin split by Dir(alpha)."""
  _check(len(lesion_loads), num_clients, alpha)
  bins = np.asarray(lesion_load_bins(lesion_loads))

  def draw():
    assignment = np.empty(len(bins), dtype=int)
    for b in np.unique(bins):
      members = rng.permutation(np.flatnonzero(bins == b))
      shares = rng.dirichlet(np.full(num_clients, alpha))
      assignment[members] = rng.choice(num_clients, size=len(members), p=shares)
    return assignment.tolist()

  return _redraw_until_no_client_is_empty(draw, num_clients)


def quantity_partition(num_subjects: int, num_clients: int, alpha: float,
                       rng: np.random.Generator) -> list[int]:
  """Client index of each subject, client sizes ~ Dir(alpha) * num_subjects."""
  _check(num_subjects, num_clients, alpha)

  def draw():
    shares = rng.dirichlet(np.full(num_clients, alpha))
    cuts = np.round(np.cumsum(shares)[:-1] * num_subjects).astype(int)
    assignment = np.empty(num_subjects, dtype=int)
    for client, members in enumerate(np.split(rng.permutation(num_subjects), cuts)):
      assignment[members] = client
    return assignment.tolist()

  return _redraw_until_no_client_is_empty(draw, num_clients)


def split_by_subject(members: Sequence[str], fractions: Sequence[float],
                     rng: np.random.Generator) -> list[list[str]]:
  """Splits one group's subjects into len(fractions) held-out parts + the rest.

  Part i gets round(fraction_i * K) of the K subjects; at least one subject
  always stays in the last (training) part. Each part keeps the input order.
  """
  order = rng.permutation(len(members))
  parts, start = [], 0
  for fraction in fractions:
    size = min(len(members) - 1 - start, round(fraction * len(members)))
    size = max(0, size)
    parts.append([members[i] for i in sorted(order[start:start + size])])
    start += size
  parts.append([members[i] for i in sorted(order[start:])])
  return parts
