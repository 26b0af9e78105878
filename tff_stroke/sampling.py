"""Client sampling that matches what the accountant assumes.

Poisson sampling: each client joins a round independently with probability
q = clients_per_round / num_clients, so the number per round is random
(Binomial(N, q)); this is what `PoissonSampledDpEvent(q, ...)` accounts.
"""

import numpy as np


class PoissonSampler:
  """Draws each round's clients by independent Bernoulli(q) trials."""

  def __init__(self, client_ids: list[str], sampling_probability: float, seed: int):
    if not 0.0 < sampling_probability <= 1.0:
      raise ValueError('sampling_probability must be in (0, 1]. '
                       f'Found {sampling_probability}.')
    if not client_ids:
      raise ValueError('client_ids must not be empty.')
    self.client_ids = sorted(client_ids)
    self.sampling_probability = sampling_probability
    self._rng = np.random.default_rng(seed)

  def sample(self) -> list[str]:
    joins = self._rng.random(len(self.client_ids)) < self.sampling_probability
    return [c for c, j in zip(self.client_ids, joins) if j]


class AllClientsSampler:
  """Every client in every round."""

  sampling_probability = 1.0

  def __init__(self, client_ids: list[str]):
    if not client_ids:
      raise ValueError('client_ids must not be empty.')
    self.client_ids = sorted(client_ids)

  def sample(self) -> list[str]:
    return list(self.client_ids)
