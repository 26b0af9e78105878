"""A privacy budget: whether one more round keeps epsilon within a target."""

import dp_accounting

from tff_stroke import accounting

ACCOUNTANTS = ('pld', 'rdp')


class EpsilonBudget:
  """Allows a sequence of round events while its epsilon at delta <= target."""

  def __init__(self, target_epsilon: float, delta: float, accountant: str = 'pld'):
    if target_epsilon <= 0:
      raise ValueError(f'target_epsilon must be positive. Found {target_epsilon}.')
    if accountant not in ACCOUNTANTS:
      raise ValueError(f'accountant must be one of {ACCOUNTANTS}. Found {accountant!r}.')
    self.target_epsilon = target_epsilon
    self.delta = delta
    self.accountant = accountant

  def epsilon(self, events: list[dp_accounting.DpEvent]) -> float:
    if self.accountant == 'pld' and accounting.pld_supported(events):
      return accounting.epsilon_pld(events, self.delta)
    return accounting.epsilon_rdp(events, self.delta)[0]

  def allows(self, events: list[dp_accounting.DpEvent]) -> bool:
    return self.epsilon(events) <= self.target_epsilon
