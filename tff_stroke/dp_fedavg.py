"""DP-FedAvg with adaptive clipping: the TFF learning process and its DP state.

McMahan et al. 2018 (https://arxiv.org/abs/1710.06963), with the clipping norm
adapted to a target quantile of update norms as in Andrew et al. 2021
(https://arxiv.org/abs/1905.03871). The aggregator clips each client's update,
sums, adds Gaussian noise and divides by the *expected* number of clients per
round (a fixed denominator), which is what Poisson sampling accounting needs.
"""

from collections.abc import Callable, Mapping
import dataclasses
from typing import Any, Optional

import dp_accounting
import numpy as np
import tensorflow_federated as tff
from tensorflow_federated.python.aggregators import differential_privacy


@dataclasses.dataclass(frozen=True)
class AdaptiveClippingParams:
  """Parameters of the adaptive-clipping Gaussian aggregator."""
  noise_multiplier: float
  clients_per_round: float
  initial_l2_norm_clip: float = 0.1
  target_unclipped_quantile: float = 0.5
  clip_learning_rate: float = 0.2
  clipped_count_stddev: Optional[float] = None

  def noise_split(self) -> tuple[float, float]:
    """(value noise multiplier, clipped-count stddev) that TFF will use.

    Raises:
      ValueError: the noise multiplier cannot be met with this
        clipped_count_stddev (TFF requires z < 2 * clipped_count_stddev); the
        message says what would make it feasible.
    """
    if self.noise_multiplier < 0:
      raise ValueError(f'noise_multiplier must be non-negative. Found {self.noise_multiplier}.')
    if self.clients_per_round <= 0:
      raise ValueError(f'clients_per_round must be positive. Found {self.clients_per_round}.')
    stddev = self.clipped_count_stddev
    if stddev is None:
      stddev = 0.05 * self.clients_per_round
    if self.noise_multiplier > 0 and self.noise_multiplier >= 2 * stddev:
      raise ValueError(
          f'noise_multiplier {self.noise_multiplier} needs clipped_count_stddev '
          f'> {self.noise_multiplier / 2:g} (adaptive clipping spends part of the '
          f'noise on the clipped count); it is {stddev:g}'
          + (' (the default, 0.05 * clients_per_round)' if self.clipped_count_stddev is None else '')
          + f'. Set clipped_count_stddev above {self.noise_multiplier / 2:g}, or use '
          f'more than {self.noise_multiplier / 0.1:g} clients per round.')
    return differential_privacy.adaptive_clip_noise_params(
        self.noise_multiplier, self.clients_per_round, self.clipped_count_stddev)

  def expected_aggregator_event(self) -> dp_accounting.DpEvent:
    """The event the aggregator state will carry after a round.

    The value sum has noise multiplier value_z; the clipped count has
    sensitivity 1/2 and noise stddev s, so multiplier 2 s. Both are float32 in
    the TFF state, so they are rounded the same way here.
    """
    value_z, count_stddev = self.noise_split()
    return dp_accounting.ComposedDpEvent([
        dp_accounting.GaussianDpEvent(float(np.float32(value_z))),
        dp_accounting.GaussianDpEvent(float(np.float32(2 * count_stddev)))])


def build_adaptive_factory(params: AdaptiveClippingParams
                           ) -> tff.aggregators.UnweightedAggregationFactory:
  """TFF's adaptive-clipping Gaussian aggregator for `params`."""
  params.noise_split()
  return tff.aggregators.DifferentiallyPrivateFactory.gaussian_adaptive(
      noise_multiplier=params.noise_multiplier,
      clients_per_round=params.clients_per_round,
      initial_l2_norm_clip=params.initial_l2_norm_clip,
      target_unclipped_quantile=params.target_unclipped_quantile,
      learning_rate=params.clip_learning_rate,
      clipped_count_stddev=params.clipped_count_stddev)


OPTIMIZERS = ('sgd', 'sgdm', 'adam', 'yogi')


def build_optimizer(name: str, learning_rate: float, *,
                    momentum: float = 0.9) -> tff.learning.optimizers.Optimizer:
  """A TFF optimizer by name: 'sgd', 'sgdm' (with `momentum`), 'adam' or 'yogi'."""
  if name == 'sgd':
    return tff.learning.optimizers.build_sgdm(learning_rate)
  if name == 'sgdm':
    return tff.learning.optimizers.build_sgdm(learning_rate, momentum=momentum)
  if name == 'adam':
    return tff.learning.optimizers.build_adam(learning_rate)
  if name == 'yogi':
    return tff.learning.optimizers.build_yogi(learning_rate)
  raise ValueError(f'optimizer must be one of {OPTIMIZERS}. Found {name!r}.')


# How a client iterates its dataset: TFF's `dataset.reduce` or a Python-style
# iterator loop (TFF's "experimental simulation loop").
LOOPS = {'dataset_reduce': tff.learning.LoopImplementation.DATASET_REDUCE,
         'dataset_iterator': tff.learning.LoopImplementation.DATASET_ITERATOR}


def build_process(model_fn: Callable[[], tff.learning.models.VariableModel], *,
                  aggregator: tff.aggregators.UnweightedAggregationFactory,
                  client_optimizer: tff.learning.optimizers.Optimizer,
                  server_optimizer: tff.learning.optimizers.Optimizer,
                  loop: str = 'dataset_reduce',
                  ) -> tff.learning.templates.LearningProcess:
  """Unweighted FedAvg: every sampled client's update counts the same.

  With a DP aggregator this is DP-FedAvg; the server optimizer applies the
  noisy mean update (FedAvg with server momentum or FedAdam, Reddi et al. 2021).
  """
  return tff.learning.algorithms.build_unweighted_fed_avg(
      model_fn, client_optimizer_fn=client_optimizer,
      server_optimizer_fn=server_optimizer, model_aggregator=aggregator,
      loop_implementation=LOOPS[loop])


def find_dp_state(aggregator_state: Any) -> differential_privacy.DPAggregatorState:
  """Finds the DP aggregator's state inside (possibly wrapped) aggregator state."""
  found = _search_dp_state(aggregator_state)
  if found is None:
    raise ValueError('No DP aggregator state found in the aggregator state.')
  return found


def _search_dp_state(state: Any) -> Optional[differential_privacy.DPAggregatorState]:
  if hasattr(state, 'dp_event') and hasattr(state, 'is_init_state'):
    return state
  if isinstance(state, Mapping):
    children = state.values()
  elif isinstance(state, (list, tuple)):
    children = state
  else:
    return None
  for child in children:
    found = _search_dp_state(child)
    if found is not None:
      return found
  return None


def aggregator_event(server_state: Any) -> dp_accounting.DpEvent:
  """The DpEvent of the round that produced `server_state`."""
  return differential_privacy.extract_dp_event_from_state(
      find_dp_state(server_state.aggregator))
