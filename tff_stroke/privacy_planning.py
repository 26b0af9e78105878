"""Privacy before training: the events a planned run would produce, and the
smallest noise multiplier that meets a target epsilon.
"""

import dataclasses

import dp_accounting
from dp_accounting import pld
from dp_accounting import rdp

from tff_stroke import accounting
from tff_stroke import sampling

# The PLD search runs at a coarser (still pessimistic) discretisation, ten
# times faster; the result is then checked at the reporting discretisation.
SEARCH_PLD_DISCRETIZATION = 1e-3


@dataclasses.dataclass(frozen=True)
class PlannedRun:
  """The settings that decide a run's privacy."""
  num_clients: int
  clients_per_round: float
  rounds: int
  sampling: str = 'poisson'

  def sampler(self):
    ids = [f'client_{i}' for i in range(self.num_clients)]
    return sampling.build_sampler(self.sampling, ids, self.clients_per_round, seed=0)

  def events(self, noise_multiplier: float) -> list[dp_accounting.DpEvent]:
    event = self.sampler().round_event(dp_accounting.GaussianDpEvent(noise_multiplier))
    return [event] * self.rounds


def epsilon(plan: PlannedRun, noise_multiplier: float, delta: float, accountant: str) -> float:
  return accounting.epsilon_by(accountant, plan.events(noise_multiplier), delta)


def calibrate_noise_multiplier(plan: PlannedRun, *, target_epsilon: float, delta: float,
                               accountant: str = 'pld') -> float:
  """The smallest noise multiplier whose epsilon over the plan is <= target.

  Raises:
    ValueError: bad target or accountant, or PLD asked for uniform sampling.
  """
  if target_epsilon <= 0:
    raise ValueError(f'target_epsilon must be positive. Found {target_epsilon}.')
  events = plan.events(1.0)
  accounting.epsilon_by(accountant, events, delta)  # refuses what cannot be accounted
  relation = accounting.neighboring_relation(events)

  def fresh_accountant():
    if accountant == 'rdp':
      return rdp.RdpAccountant(neighboring_relation=relation)
    return pld.PLDAccountant(value_discretization_interval=SEARCH_PLD_DISCRETIZATION)

  def make_event(z):
    return accounting.composed_event(plan.events(z))

  z = float(dp_accounting.calibrate_dp_mechanism(
      fresh_accountant, make_event, target_epsilon, delta,
      bracket_interval=dp_accounting.LowerEndpointAndGuess(0.05, 1.0), tol=1e-4))
  # Brent's method returns a value within tol of the boundary, on either side.
  while epsilon(plan, z, delta, accountant) > target_epsilon:
    z *= 1.0001
  return z
