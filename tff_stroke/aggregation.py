"""The aggregation of client updates, chosen by name, and the DpEvent it releases.

- `none`: the unweighted mean of the updates; no clipping, no noise (FedAvg,
  McMahan et al. 2017). Each round is a `NonPrivateDpEvent`.
- `dp_fixed`: clip to a fixed L2 norm, sum, add Gaussian noise (DP-FedAvg,
  McMahan et al. 2018, https://arxiv.org/abs/1710.06963).
- `dp_adaptive`: the clip follows a quantile of the update norms, estimated
  with a noisy count of clipped clients (Andrew et al. 2021,
  https://arxiv.org/abs/1905.03871); the noise is split so that the effective
  noise multiplier is the one given.
- `dp_ftrl`: tree-aggregated noise on the running sum of clipped updates,
  applied by server SGD (DP-FTRL, Kairouz et al. 2021,
  https://arxiv.org/abs/2103.00039). It needs no sampling; its accounting
  holds when every client takes part in at most one round of the tree, which
  the `shuffled` sampler guarantees.

Every option divides by the expected number of clients per round and can sit
behind zeroing of outlying updates (max-abs value above a threshold, or not
finite). The threshold is fixed: TFF's adaptive zeroing estimates it from
client norms without noise, which the DP guarantee would not cover.
"""

import dataclasses
from typing import Any, Optional

import dp_accounting
import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from tff_stroke import dp_fedavg

AGGREGATORS = ('none', 'dp_fixed', 'dp_adaptive', 'dp_ftrl')


@dataclasses.dataclass(frozen=True)
class Aggregation:
  """One aggregation option and its parameters.

  `l2_norm_clip` is the fixed clip of `dp_fixed` and `dp_ftrl`, and the
  initial clip of `dp_adaptive`.
  """
  kind: str
  noise_multiplier: float
  clients_per_round: float
  l2_norm_clip: float = 0.1
  target_unclipped_quantile: float = 0.5
  clip_learning_rate: float = 0.2
  clipped_count_stddev: Optional[float] = None
  zeroing_norm: Optional[float] = 100.0
  noise_seed: Optional[int] = None

  @property
  def private(self) -> bool:
    return self.kind != 'none'

  def adaptive_params(self) -> dp_fedavg.AdaptiveClippingParams:
    return dp_fedavg.AdaptiveClippingParams(
        noise_multiplier=self.noise_multiplier, clients_per_round=float(self.clients_per_round),
        initial_l2_norm_clip=self.l2_norm_clip,
        target_unclipped_quantile=self.target_unclipped_quantile,
        clip_learning_rate=self.clip_learning_rate,
        clipped_count_stddev=self.clipped_count_stddev)

  def validate(self) -> None:
    """Raises ValueError for parameters TFF would refuse, naming the fix."""
    if self.kind not in AGGREGATORS:
      raise ValueError(f'aggregator must be one of {AGGREGATORS}. Found {self.kind!r}.')
    if self.noise_multiplier < 0:
      raise ValueError(f'noise_multiplier must be non-negative. Found {self.noise_multiplier}.')
    if self.kind == 'none' and self.noise_multiplier != 0:
      raise ValueError("aggregator 'none' adds no noise; set noise_multiplier to 0 "
                       f'(found {self.noise_multiplier}) or choose a DP aggregator.')
    if self.private and self.l2_norm_clip <= 0:
      raise ValueError(f'l2_norm_clip must be positive. Found {self.l2_norm_clip}.')
    if self.zeroing_norm is not None and self.zeroing_norm <= 0:
      raise ValueError(f'zeroing_norm must be positive or None. Found {self.zeroing_norm}.')
    self.noise_split()

  def noise_split(self) -> tuple[Optional[float], Optional[float]]:
    """(noise multiplier on the update sum, clipped-count stddev), None where absent."""
    if self.kind == 'dp_adaptive':
      return self.adaptive_params().noise_split()
    if self.clients_per_round <= 0:
      raise ValueError(f'clients_per_round must be positive. Found {self.clients_per_round}.')
    return (None if self.kind == 'none' else self.noise_multiplier), None

  def expected_aggregator_event(self) -> dp_accounting.DpEvent:
    """The event `aggregator_event` will read after a round (float32, as in TFF)."""
    if self.kind == 'none':
      return dp_accounting.NonPrivateDpEvent()
    if self.kind == 'dp_adaptive':
      return self.adaptive_params().expected_aggregator_event()
    return dp_accounting.GaussianDpEvent(float(np.float32(self.noise_multiplier)))

  def build_factory(self, model_fn) -> tff.aggregators.UnweightedAggregationFactory:
    """The TFF aggregation factory; `model_fn` gives dp_ftrl its record specs."""
    self.validate()
    if self.kind == 'none':
      factory = tff.aggregators.UnweightedMeanFactory()
    elif self.kind == 'dp_fixed':
      factory = tff.aggregators.DifferentiallyPrivateFactory.gaussian_fixed(
          noise_multiplier=self.noise_multiplier,
          clients_per_round=float(self.clients_per_round), clip=self.l2_norm_clip)
    elif self.kind == 'dp_adaptive':
      factory = dp_fedavg.build_adaptive_factory(self.adaptive_params())
    else:
      record_specs = [tf.TensorSpec(v.shape, v.dtype)
                      for v in model_fn().trainable_variables]
      factory = tff.aggregators.DifferentiallyPrivateFactory.tree_aggregation(
          noise_multiplier=self.noise_multiplier,
          clients_per_round=float(self.clients_per_round), l2_norm_clip=self.l2_norm_clip,
          record_specs=record_specs, noise_seed=self.noise_seed, use_efficient=True)
    if self.zeroing_norm is not None:
      factory = tff.aggregators.zeroing_factory(self.zeroing_norm, factory)
    return factory

  def aggregator_event(self, server_state: Any) -> dp_accounting.DpEvent:
    """The DpEvent of the round that produced `server_state`.

    dp_fixed and dp_adaptive: read from the DP aggregator's state. dp_ftrl:
    TFF's tree query reports `UnsupportedDpEvent`, so this is the Gaussian
    noise at each tree node, checked against that state's presence; the
    sampler turns it into a leaf of the tree (see `sampling.ShuffledSampler`).
    """
    if self.kind == 'none':
      return dp_accounting.NonPrivateDpEvent()
    event = dp_fedavg.aggregator_event(server_state)
    if self.kind != 'dp_ftrl':
      return event
    if not isinstance(event, dp_accounting.UnsupportedDpEvent):
      raise ValueError(f'dp_ftrl: expected the tree query to report UnsupportedDpEvent; found {event}')
    return self.expected_aggregator_event()

  def report_record(self) -> dict:
    """The mechanism as the privacy report states it."""
    algorithms = {
        'none': 'FedAvg, unweighted mean of client updates (not private)',
        'dp_fixed': 'DP-FedAvg (McMahan et al. 2018), fixed clip, unweighted, '
                    'fixed denominator = expected clients per round',
        'dp_adaptive': 'DP-FedAvg (McMahan et al. 2018) with adaptive clipping '
                       '(Andrew et al. 2021), unweighted, fixed denominator = '
                       'expected clients per round',
        'dp_ftrl': 'DP-FTRL (Kairouz et al. 2021): tree aggregation of the clipped '
                   'update sums (efficient tree, residuals), server SGD',
    }
    clipping = {'none': {'kind': 'none'},
                'dp_fixed': {'kind': 'fixed', 'l2_norm_clip': self.l2_norm_clip},
                'dp_ftrl': {'kind': 'fixed', 'l2_norm_clip': self.l2_norm_clip},
                'dp_adaptive': {'kind': 'adaptive (Andrew et al. 2021)',
                                'initial_l2_norm_clip': self.l2_norm_clip,
                                'target_unclipped_quantile': self.target_unclipped_quantile,
                                'clip_learning_rate': self.clip_learning_rate}}
    return {'aggregator': self.kind, 'algorithm': algorithms[self.kind],
            'noise': {'none': 'none', 'dp_ftrl': 'Gaussian at each tree node'}.get(
                self.kind, 'Gaussian'),
            'clipping': clipping[self.kind], 'zeroing_norm': self.zeroing_norm}
