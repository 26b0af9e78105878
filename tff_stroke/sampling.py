"""Client samplers, each with the DpEvent that accounts for its sampling.

The event of a round is made by the sampler that drew its clients, so the
accountant always assumes the sampling that ran:
- `poisson`: each client joins independently with probability q = m / N (the
  number per round is Binomial(N, q)): `PoissonSampledDpEvent(q, G(z))`,
  add-or-remove-one adjacency.
- `uniform`: exactly m clients, uniformly without replacement:
  `SampledWithoutReplacementDpEvent(N, m, G(z / 2))`. Its analysis (Wang et
  al. 2019) uses replace-one adjacency, under which one client's change moves
  the clipped sum by up to 2 * clip, hence z / 2. RDP only.
- `all`: every client, every round: `G(z)`.
- `shuffled`: no sampling (DP-FTRL): the clients in one seeded random order,
  m per round, each in at most one round. With tree aggregation each round is
  a leaf of one tree, `SingleEpochTreeAggregationDpEvent(z, 1)`; the
  accountant joins consecutive leaves into one tree (see `accounting`).
"""

import dp_accounting
import numpy as np

SAMPLING_MODES = ('poisson', 'uniform', 'all', 'shuffled')


class _SeededSampler:
  """A sampler whose draws come from one numpy Generator; its state checkpoints."""

  def __init__(self, seed: int):
    self._rng = np.random.default_rng(seed)

  def rng_state(self) -> dict:
    return self._rng.bit_generator.state

  def restore_rng_state(self, state: dict) -> None:
    self._rng.bit_generator.state = state


class PoissonSampler(_SeededSampler):
  """Draws each round's clients by independent Bernoulli(q) trials."""

  mode = 'poisson'

  def __init__(self, client_ids: list[str], sampling_probability: float, seed: int):
    if not 0.0 < sampling_probability <= 1.0:
      raise ValueError('sampling_probability must be in (0, 1]. '
                       f'Found {sampling_probability}.')
    super().__init__(seed)
    self.client_ids = _sorted_ids(client_ids)
    self.sampling_probability = sampling_probability

  def sample(self) -> list[str]:
    joins = self._rng.random(len(self.client_ids)) < self.sampling_probability
    return [c for c, j in zip(self.client_ids, joins) if j]

  def round_event(self, gaussian: dp_accounting.GaussianDpEvent) -> dp_accounting.DpEvent:
    return dp_accounting.PoissonSampledDpEvent(self.sampling_probability, gaussian)


class UniformSampler(_SeededSampler):
  """Draws exactly `sample_size` clients per round, without replacement."""

  mode = 'uniform'

  def __init__(self, client_ids: list[str], sample_size: int, seed: int):
    self.client_ids = _sorted_ids(client_ids)
    if not 0 < sample_size <= len(self.client_ids):
      raise ValueError(f'sample_size must be in [1, {len(self.client_ids)}]. '
                       f'Found {sample_size}.')
    super().__init__(seed)
    self.sample_size = sample_size
    self.sampling_probability = sample_size / len(self.client_ids)

  def sample(self) -> list[str]:
    chosen = self._rng.choice(len(self.client_ids), self.sample_size, replace=False)
    return [self.client_ids[i] for i in sorted(chosen)]

  def round_event(self, gaussian: dp_accounting.GaussianDpEvent) -> dp_accounting.DpEvent:
    return dp_accounting.SampledWithoutReplacementDpEvent(
        len(self.client_ids), self.sample_size,
        dp_accounting.GaussianDpEvent(gaussian.noise_multiplier / 2))


class AllClientsSampler:
  """Every client in every round."""

  mode = 'all'
  sampling_probability = 1.0

  def __init__(self, client_ids: list[str]):
    self.client_ids = _sorted_ids(client_ids)

  def sample(self) -> list[str]:
    return list(self.client_ids)

  def rng_state(self) -> dict:
    return {}

  def restore_rng_state(self, state: dict) -> None:
    del state  # nothing is random

  def round_event(self, gaussian: dp_accounting.GaussianDpEvent) -> dp_accounting.DpEvent:
    return gaussian


class ShuffledSampler:
  """One pass over the clients in a seeded random order, m per round."""

  mode = 'shuffled'

  def __init__(self, client_ids: list[str], clients_per_round: int, seed: int):
    self.client_ids = _sorted_ids(client_ids)
    if not 0 < clients_per_round <= len(self.client_ids):
      raise ValueError(f'clients_per_round must be in [1, {len(self.client_ids)}]. '
                       f'Found {clients_per_round}.')
    self.clients_per_round = clients_per_round
    self.sampling_probability = clients_per_round / len(self.client_ids)
    self._order = list(np.random.default_rng(seed).permutation(self.client_ids))
    self._next_round = 0

  @property
  def max_rounds(self) -> int:
    """Rounds before some client would take part a second time."""
    return len(self.client_ids) // self.clients_per_round

  def sample(self) -> list[str]:
    if self._next_round >= self.max_rounds:
      raise ValueError(f'all {self.max_rounds} rounds of the single pass over the '
                       'clients have run; a further round would repeat a client')
    start = self._next_round * self.clients_per_round
    self._next_round += 1
    return sorted(self._order[start:start + self.clients_per_round])

  def rng_state(self) -> dict:
    return {'next_round': self._next_round}

  def restore_rng_state(self, state: dict) -> None:
    self._next_round = int(state['next_round'])

  def round_event(self, gaussian: dp_accounting.GaussianDpEvent) -> dp_accounting.DpEvent:
    return dp_accounting.SingleEpochTreeAggregationDpEvent(gaussian.noise_multiplier, 1)


def build_sampler(mode: str, client_ids: list[str], clients_per_round: float, seed: int):
  """The sampler for `mode` with m = clients_per_round.

  Raises:
    ValueError: unknown mode, m outside (0, N], a non-integer m for
      'uniform' or 'shuffled', or m != N for 'all'.
  """
  num_clients = len(client_ids)
  if mode not in SAMPLING_MODES:
    raise ValueError(f'sampling must be one of {SAMPLING_MODES}. Found {mode!r}.')
  if not 0 < clients_per_round <= num_clients:
    raise ValueError(f'clients_per_round must be in (0, num_clients = {num_clients}]. '
                     f'Found {clients_per_round}.')
  if mode == 'poisson':
    return PoissonSampler(client_ids, clients_per_round / num_clients, seed)
  if mode in ('uniform', 'shuffled'):
    if clients_per_round != int(clients_per_round):
      raise ValueError(f'sampling {mode!r} needs a whole clients_per_round. '
                       f'Found {clients_per_round}.')
    sampler_class = UniformSampler if mode == 'uniform' else ShuffledSampler
    return sampler_class(client_ids, int(clients_per_round), seed)
  if clients_per_round != num_clients:
    raise ValueError(f"sampling 'all' needs clients_per_round = num_clients = "
                     f'{num_clients}. Found {clients_per_round}.')
  return AllClientsSampler(client_ids)


def _sorted_ids(client_ids):
  if not client_ids:
    raise ValueError('client_ids must not be empty.')
  return sorted(client_ids)
