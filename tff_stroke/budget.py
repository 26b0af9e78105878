"""A privacy budget: whether one more round keeps epsilon within a target."""

import dp_accounting

from tff_stroke import accounting

class EpsilonBudget:
  """Allows a sequence of round events while its epsilon at delta <= target."""

  def __init__(self, target_epsilon: float, delta: float, accountant: str = 'pld'):
    if target_epsilon <= 0:
      raise ValueError(f'target_epsilon must be positive. Found {target_epsilon}.')
    if accountant not in accounting.ACCOUNTANTS:
      raise ValueError(f'accountant must be one of {accounting.ACCOUNTANTS}. '
                       f'Found {accountant!r}.')
    self.target_epsilon = target_epsilon
    self.delta = delta
    self.accountant = accountant

  def allows(self, events: list[dp_accounting.DpEvent]) -> bool:
    return accounting.epsilon_by(self.accountant, events, self.delta) <= self.target_epsilon
