"""Epsilon against independently known values."""

import math

import dp_accounting
from dp_accounting import pld
from dp_accounting import rdp
import pytest

from tff_stroke import accounting
from tff_stroke import dp_events


def poisson_gaussian(q, z):
  return dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z))


def test_dp_sgd_known_value_design_md():
  # DESIGN.md: example-level DP-SGD, n=60000, batch 256, z=1.1, 60 epochs
  # (14063 steps), delta=1e-5, Poisson: RDP 2.597, PLD 2.382 (dp-accounting 0.4.3).
  events = [poisson_gaussian(256 / 60000, 1.1)] * 14063
  eps_rdp, _ = accounting.epsilon_rdp(events, 1e-5)
  assert eps_rdp == pytest.approx(2.597, abs=5e-4)
  assert accounting.epsilon_pld(events, 1e-5) == pytest.approx(2.382, abs=5e-4)


def test_tf_privacy_rdp_known_value():
  # TF Privacy's compute_dp_sgd_privacy test: n=60000, batch 150, z=1.3,
  # 15 epochs (6000 steps), delta=1e-5 -> epsilon 0.7242234026 at order 19.
  events = [poisson_gaussian(150 / 60000, 1.3)] * 6000
  eps, order = accounting.epsilon_rdp(events, 1e-5)
  assert eps == pytest.approx(0.7242234026, abs=1e-9)
  assert order == 19


def test_curve_matches_accountants_on_mixed_events():
  events = [poisson_gaussian(0.3, 1.2)] * 4 + [poisson_gaussian(0.3, 1.5)] * 3
  curve = accounting.epsilon_per_round(events, 1e-5)
  assert [e.rounds for e in curve] == list(range(1, 8))
  for k in (1, 4, 5, 7):
    rdp_acc = rdp.RdpAccountant()
    pld_acc = pld.PLDAccountant()
    for event in events[:k]:
      rdp_acc.compose(event)
      pld_acc.compose(event)
    assert curve[k - 1].epsilon_rdp == pytest.approx(rdp_acc.get_epsilon(1e-5), rel=1e-9)
    assert curve[k - 1].epsilon_pld == pytest.approx(pld_acc.get_epsilon(1e-5), rel=1e-6)



def test_a_strided_curve_has_pld_every_stride_rounds_and_the_last_equal_to_the_full_curve():
  events = [poisson_gaussian(0.3, 1.2)] * 5 + [poisson_gaussian(0.3, 1.5)] * 3
  full = accounting.epsilon_per_round(events, 1e-5)
  strided = accounting.epsilon_per_round(events, 1e-5, pld_stride=3)
  assert [e.epsilon_rdp for e in strided] == [e.epsilon_rdp for e in full]
  assert [e.rounds for e in strided if e.epsilon_pld is not None] == [3, 6, 8]
  for point in strided:
    if point.epsilon_pld is not None:
      assert point.epsilon_pld == full[point.rounds - 1].epsilon_pld
  assert accounting.pld_curve_stride(100) == 1
  assert accounting.pld_curve_stride(101) == 2
  assert accounting.pld_curve_stride(1000) == 10

def test_epsilon_grows_with_rounds_and_falls_with_noise():
  low_noise = accounting.epsilon_per_round([poisson_gaussian(0.2, 1.0)] * 6, 1e-5)
  high_noise = accounting.epsilon_per_round([poisson_gaussian(0.2, 2.0)] * 6, 1e-5)
  for curve in (low_noise, high_noise):
    assert all(a.epsilon_pld < b.epsilon_pld for a, b in zip(curve, curve[1:]))
    assert all(a.epsilon_rdp < b.epsilon_rdp for a, b in zip(curve, curve[1:]))
  assert all(h.epsilon_pld < l.epsilon_pld for h, l in zip(high_noise, low_noise))


def test_pld_is_tighter_than_rdp():
  events = [poisson_gaussian(0.1, 1.0)] * 50
  assert accounting.epsilon_pld(events, 1e-5) < accounting.epsilon_rdp(events, 1e-5)[0]


def test_no_noise_has_no_finite_epsilon():
  events = [poisson_gaussian(0.5, 0.0)] * 3
  assert math.isinf(accounting.epsilon_pld(events, 1e-5))
  assert math.isinf(accounting.epsilon_rdp(events, 1e-5)[0])
  assert all(math.isinf(e.epsilon_pld) for e in accounting.epsilon_per_round(events, 1e-5))


def test_group_runs():
  a, b = poisson_gaussian(0.1, 1.0), poisson_gaussian(0.1, 2.0)
  assert accounting.group_runs([a, a, b, a]) == [(a, 2), (b, 1), (a, 1)]


def test_uniform_sampling_is_rdp_only_with_replace_one():
  events = [dp_accounting.SampledWithoutReplacementDpEvent(
      100, 10, dp_accounting.GaussianDpEvent(1.0))] * 20
  assert accounting.epsilon_pld(events, 1e-5) is None
  assert all(e.epsilon_pld is None for e in accounting.epsilon_per_round(events, 1e-5))
  accountant = rdp.RdpAccountant(
      neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
  accountant.compose(dp_accounting.SelfComposedDpEvent(events[0], 20))
  assert accounting.epsilon_rdp(events, 1e-5)[0] == pytest.approx(accountant.get_epsilon(1e-5))


def test_delta_for_epsilon_inverts_epsilon():
  events = [poisson_gaussian(0.1, 1.0)] * 30
  eps_pld = accounting.epsilon_pld(events, 1e-5)
  eps_rdp, _ = accounting.epsilon_rdp(events, 1e-5)
  delta_rdp, _ = accounting.delta_for_epsilon(events, eps_rdp)
  _, delta_pld = accounting.delta_for_epsilon(events, eps_pld)
  assert delta_pld == pytest.approx(1e-5, rel=1e-2)
  assert delta_rdp <= 1e-5 * 1.01


def test_tree_of_ten_steps_is_a_gaussian_with_z_over_two():
  # ceil(log2(10 + 1)) = 4 levels: RDP 4 * alpha / (2 z^2), a Gaussian with z / 2.
  leaves = [dp_accounting.SingleEpochTreeAggregationDpEvent(1.5, 1)] * 10
  expected, _ = accounting.epsilon_rdp([dp_accounting.GaussianDpEvent(0.75)], 1e-5)
  assert accounting.epsilon_rdp(leaves, 1e-5)[0] == pytest.approx(expected, rel=1e-12)
  curve = accounting.epsilon_per_round(leaves, 1e-5)
  assert curve[0].epsilon_rdp == pytest.approx(
      accounting.epsilon_rdp([dp_accounting.GaussianDpEvent(1.5)], 1e-5)[0])
  assert curve[-1].epsilon_rdp == pytest.approx(expected)
  assert all(e.epsilon_pld is None for e in curve)


def test_tree_leaves_mixed_with_other_events_are_refused():
  leaf = dp_accounting.SingleEpochTreeAggregationDpEvent(1.0, 1)
  with pytest.raises(dp_events.UnsupportedDpEventError, match='leaves of\\s+one tree'):
    accounting.epsilon_rdp([leaf, dp_accounting.GaussianDpEvent(1.0)], 1e-5)
  with pytest.raises(dp_events.UnsupportedDpEventError):
    accounting.epsilon_rdp([leaf, dp_accounting.SingleEpochTreeAggregationDpEvent(2.0, 1)], 1e-5)
