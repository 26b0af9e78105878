"""DpEvent serialisation and the per-round event."""

import dp_accounting
import numpy as np
import pytest
from tensorflow_federated.python.aggregators import differential_privacy

from tff_stroke import dp_events


def test_json_round_trip_of_nested_event():
  event = dp_accounting.PoissonSampledDpEvent(0.25, dp_accounting.ComposedDpEvent(
      [dp_accounting.GaussianDpEvent(np.float32(0.75)),
       dp_accounting.GaussianDpEvent(2.0)]))
  restored = dp_events.event_from_json(dp_events.event_to_json(event))
  assert restored == dp_accounting.PoissonSampledDpEvent(0.25, dp_accounting.ComposedDpEvent(
      [dp_accounting.GaussianDpEvent(float(np.float32(0.75))),
       dp_accounting.GaussianDpEvent(2.0)]))


def test_unknown_event_type_is_refused():
  with pytest.raises(dp_events.UnsupportedDpEventError, match='Bogus'):
    dp_events.event_from_json({'event_type': 'Bogus'})


@pytest.mark.parametrize('z,clients,stddev', [(0.5, 10.0, None), (1.0, 8.0, 1.0), (0.3, 2.0, 0.5)])
def test_effective_noise_multiplier_inverts_tff_noise_split(z, clients, stddev):
  value_z, count_stddev = differential_privacy.adaptive_clip_noise_params(z, clients, stddev)
  # The aggregator's event: value sum with value_z; clipped count with
  # sensitivity 1/2 and stddev count_stddev, i.e. noise multiplier 2 * stddev.
  event = dp_accounting.ComposedDpEvent([
      dp_accounting.GaussianDpEvent(value_z),
      dp_accounting.GaussianDpEvent(2 * count_stddev)])
  assert dp_events.effective_noise_multiplier(event) == pytest.approx(z, rel=1e-12)


def test_gaussian_equivalent_and_value_noise():
  event = dp_accounting.ComposedDpEvent([dp_accounting.GaussianDpEvent(1.5),
                                         dp_accounting.GaussianDpEvent(3.0)])
  z = (1.5**-2 + 3.0**-2) ** -0.5
  assert dp_events.gaussian_equivalent(event) == dp_accounting.GaussianDpEvent(z)
  assert dp_events.value_noise_multiplier(event) == 1.5
  assert dp_events.effective_noise_multiplier(dp_accounting.ComposedDpEvent(
      [dp_accounting.GaussianDpEvent(0.0), dp_accounting.GaussianDpEvent(3.0)])) == 0.0


def test_unsupported_aggregator_event():
  with pytest.raises(dp_events.UnsupportedDpEventError):
    dp_events.effective_noise_multiplier(dp_accounting.LaplaceDpEvent(1.0))
