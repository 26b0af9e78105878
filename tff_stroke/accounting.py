"""Epsilon of a sequence of per-round DpEvents, by RDP and by PLD.

Both accountants of dp_accounting consume the same events. Poisson-sampled
and unsampled rounds use add-or-remove-one adjacency (one client's whole
data); rounds sampled without replacement use replace-one, and only the RDP
accountant supports them, so their PLD epsilon is None. PLD is the tighter;
RDP is reported with the order it chose.

DP-FTRL rounds are leaves of one aggregation tree, each client in at most one
leaf: the ledger holds `SingleEpochTreeAggregationDpEvent(z, 1)` per round, and
n such rounds are accounted as one tree of n steps (Kairouz et al. 2021,
appendix D: RDP of a Gaussian with multiplier z / sqrt(ceil(log2(n + 1)))),
under replace-with-special adjacency, by RDP only. Any other mix of tree
leaves with other events has no exact accounting here and is refused.
"""

import dataclasses
import math
from typing import Optional

import dp_accounting
from dp_accounting import pld
from dp_accounting import rdp

from tff_stroke import dp_events

# dp_accounting's default PLD discretisation (pessimistic: an upper bound).
PLD_DISCRETIZATION = 1e-4
ACCOUNTANTS = ('pld', 'rdp')
# A report's per-round PLD curve has at most this many points (and the last).
PLD_CURVE_POINTS = 100


@dataclasses.dataclass(frozen=True)
class Epsilon:
  """Epsilon after some rounds, at a fixed delta."""
  rounds: int
  epsilon_rdp: float
  rdp_order: float
  epsilon_pld: Optional[float]  # None where PLD does not support the events


def group_runs(events: list[dp_accounting.DpEvent]) -> list[tuple[dp_accounting.DpEvent, int]]:
  """Groups consecutive equal events into (event, count) runs."""
  runs = []
  for event in events:
    if runs and runs[-1][0] == event:
      runs[-1] = (event, runs[-1][1] + 1)
    else:
      runs.append((event, 1))
  return runs


def _is_tree(events: list[dp_accounting.DpEvent]) -> bool:
  return any(isinstance(e, dp_accounting.SingleEpochTreeAggregationDpEvent) for e in events)


def _tree_event(events: list[dp_accounting.DpEvent]
                ) -> dp_accounting.SingleEpochTreeAggregationDpEvent:
  """The one tree whose leaves are `events`.

  Raises:
    UnsupportedDpEventError: the events are not leaves of one tree.
  """
  leaf = events[0]
  if any(e != leaf for e in events) or leaf.step_counts != 1:
    raise dp_events.UnsupportedDpEventError(
        'Tree-aggregation rounds can only be accounted as the single-step leaves of '
        f'one tree with one noise multiplier; found {group_runs(events)}.')
  return dp_accounting.SingleEpochTreeAggregationDpEvent(leaf.noise_multiplier, len(events))


def composed_event(events: list[dp_accounting.DpEvent]) -> dp_accounting.DpEvent:
  """One event for the whole sequence: the tree of DP-FTRL's leaves, or a
  ComposedDpEvent of SelfComposedDpEvents."""
  if _is_tree(events):
    return _tree_event(events)
  return dp_accounting.ComposedDpEvent(
      [dp_accounting.SelfComposedDpEvent(e, n) for e, n in group_runs(events)])


def pld_supported(events: list[dp_accounting.DpEvent]) -> bool:
  """False when some round was sampled without replacement or tree-aggregated
  (RDP only)."""
  return not any(isinstance(e, (dp_accounting.SampledWithoutReplacementDpEvent,
                                dp_accounting.SingleEpochTreeAggregationDpEvent))
                 for e in events)


def neighboring_relation(events: list[dp_accounting.DpEvent]):
  """Replace-special for tree aggregation, replace-one for rounds sampled
  without replacement, else add-or-remove-one."""
  if _is_tree(events):
    return dp_accounting.NeighboringRelation.REPLACE_SPECIAL
  if pld_supported(events):
    return dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE
  return dp_accounting.NeighboringRelation.REPLACE_ONE


def _rdp_accountant(events) -> rdp.RdpAccountant:
  return rdp.RdpAccountant(neighboring_relation=neighboring_relation(events))


def _pld_accountant(events) -> Optional[pld.PLDAccountant]:
  if not pld_supported(events):
    return None
  accountant = pld.PLDAccountant(value_discretization_interval=PLD_DISCRETIZATION)
  accountant.compose(composed_event(events))
  return accountant


def epsilon_rdp(events: list[dp_accounting.DpEvent], delta: float) -> tuple[float, float]:
  """(epsilon, optimal order) from the RDP accountant."""
  accountant = _rdp_accountant(events)
  accountant.compose(composed_event(events))
  epsilon, order = accountant.get_epsilon_and_optimal_order(delta)
  return float(epsilon), float(order)


def epsilon_pld(events: list[dp_accounting.DpEvent], delta: float) -> Optional[float]:
  """Epsilon from the PLD accountant; inf when some event adds no noise;
  None when PLD does not support the events."""
  accountant = _pld_accountant(events)
  return None if accountant is None else float(accountant.get_epsilon(delta))


def epsilon_by(accountant: str, events: list[dp_accounting.DpEvent], delta: float) -> float:
  """Epsilon from the named accountant ('pld' or 'rdp').

  Raises:
    ValueError: unknown accountant, or 'pld' for events it does not support.
  """
  if accountant == 'rdp':
    return epsilon_rdp(events, delta)[0]
  if accountant != 'pld':
    raise ValueError(f'accountant must be one of {ACCOUNTANTS}. Found {accountant!r}.')
  value = epsilon_pld(events, delta)
  if value is None:
    raise ValueError('Sampling without replacement is accounted by RDP only; '
                     "use accountant 'rdp'.")
  return value


def delta_for_epsilon(events: list[dp_accounting.DpEvent],
                      epsilon: float) -> tuple[float, Optional[float]]:
  """(delta by RDP, delta by PLD or None) at the given epsilon."""
  rdp_accountant = _rdp_accountant(events)
  rdp_accountant.compose(composed_event(events))
  pld_accountant = _pld_accountant(events)
  return (float(rdp_accountant.get_delta(epsilon)),
          None if pld_accountant is None else float(pld_accountant.get_delta(epsilon)))


def pld_curve_stride(num_rounds: int, max_points: int = PLD_CURVE_POINTS) -> int:
  """Rounds between PLD points of a curve of at most `max_points` (and the last)."""
  return max(1, math.ceil(num_rounds / max_points))


def epsilon_per_round(events: list[dp_accounting.DpEvent], delta: float, *,
                      pld_stride: int = 1) -> list[Epsilon]:
  """Epsilon after each prefix of `events` (round 1, 2, ...).

  RDP is given after every round; PLD after every `pld_stride`-th round and
  the last (None elsewhere): a PLD epsilon costs in proportion to the width
  of the composed distribution, which grows with the rounds.
  The PLD of each distinct round event is built once and self-composed, the
  same construction as dp_accounting's PLDAccountant, so the last entry
  equals `epsilon_pld`. A tree's prefix is a smaller tree, accounted afresh.
  """
  if _is_tree(events):
    return [Epsilon(k, *epsilon_rdp(events[:k], delta), None)
            for k in range(1, len(events) + 1)]
  curve = []
  rdp_accountant = _rdp_accountant(events)
  with_pld = pld_supported(events)
  completed_runs_pld = None
  for event, count in group_runs(events):
    single = _single_round_pld(event) if with_pld else None
    for k in range(1, count + 1):
      rdp_accountant.compose(event)
      eps_rdp, order = rdp_accountant.get_epsilon_and_optimal_order(delta)
      round_num = len(curve) + 1
      total, eps_pld = None, None
      if not with_pld:
        pass
      elif single is None or completed_runs_pld is math.inf:
        total, eps_pld = math.inf, math.inf
      elif k == count or round_num % pld_stride == 0:
        total = single.self_compose(k)
        if completed_runs_pld is not None:
          total = completed_runs_pld.compose(total)
        if round_num % pld_stride == 0 or round_num == len(events):
          eps_pld = float(total.get_epsilon_for_delta(delta))
      curve.append(Epsilon(round_num, float(eps_rdp), float(order), eps_pld))
    completed_runs_pld = total
  return curve


def _single_round_pld(event: dp_accounting.DpEvent):
  """PLD of one round's event, as PLDAccountant builds it; None if not private."""
  if isinstance(event, dp_accounting.NonPrivateDpEvent):
    return None
  sampling_probability = 1.0
  if isinstance(event, dp_accounting.PoissonSampledDpEvent):
    sampling_probability, event = event.sampling_probability, event.event
  if not isinstance(event, dp_accounting.GaussianDpEvent):
    raise dp_accounting.UnsupportedEventError(
        f'Expected a Gaussian or Poisson-sampled Gaussian round event. Found {event}.')
  if event.noise_multiplier == 0.0:
    return None
  return pld.privacy_loss_distribution.from_gaussian_mechanism(
      standard_deviation=event.noise_multiplier,
      value_discretization_interval=PLD_DISCRETIZATION,
      sampling_prob=sampling_probability)
