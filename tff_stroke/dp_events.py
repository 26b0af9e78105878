"""DpEvents as JSON, and the Gaussian equivalent of the aggregator's event.

The aggregator of adaptive clipping releases two Gaussian sums over the same
clients in a round: the clipped updates (noise multiplier z_value) and the
count of clipped clients (z_count = 2 * clipped_count_stddev). Their joint
release is exactly a single Gaussian mechanism with
z = (z_value**-2 + z_count**-2) ** -0.5, the effective noise multiplier of
Andrew et al. 2021 (https://arxiv.org/abs/1905.03871), Section 3.
"""

import math

import attr
import dp_accounting

class UnsupportedDpEventError(ValueError):
  """An event this project cannot reduce to a Gaussian mechanism."""


def event_to_json(event: dp_accounting.DpEvent) -> dict:
  """Serialises any attrs-based DpEvent, nested events included."""
  fields = {}
  for field in attr.fields(type(event)):
    value = getattr(event, field.name)
    if isinstance(value, dp_accounting.DpEvent):
      value = event_to_json(value)
    elif isinstance(value, (list, tuple)):
      value = [event_to_json(v) for v in value]
    elif hasattr(value, 'item'):  # numpy scalars from the aggregator state
      value = value.item()
    fields[field.name] = value
  return {'event_type': type(event).__name__, **fields}


def event_from_json(value: dict) -> dp_accounting.DpEvent:
  """Inverse of `event_to_json`."""
  fields = dict(value)
  name = fields.pop('event_type')
  cls = getattr(dp_accounting, name, None)
  if not (isinstance(cls, type) and issubclass(cls, dp_accounting.DpEvent)):
    raise UnsupportedDpEventError(f'Unknown DpEvent type {name!r}.')
  for key, item in fields.items():
    if isinstance(item, dict) and 'event_type' in item:
      fields[key] = event_from_json(item)
    elif isinstance(item, list):
      fields[key] = [event_from_json(v) for v in item]
  return cls(**fields)


def round_event(sampler, aggregator_event: dp_accounting.DpEvent) -> dp_accounting.DpEvent:
  """The event of a round: the sampler's event around the aggregator's
  Gaussian equivalent; a non-private round stays non-private."""
  if isinstance(aggregator_event, dp_accounting.NonPrivateDpEvent):
    return aggregator_event
  return sampler.round_event(gaussian_equivalent(aggregator_event))


def gaussian_equivalent(event: dp_accounting.DpEvent) -> dp_accounting.GaussianDpEvent:
  """The single Gaussian mechanism equivalent to the aggregator's event."""
  return dp_accounting.GaussianDpEvent(effective_noise_multiplier(event))


def value_noise_multiplier(event: dp_accounting.DpEvent) -> float:
  """Noise multiplier on the clipped updates: the first Gaussian of the event."""
  while isinstance(event, dp_accounting.ComposedDpEvent):
    event = event.events[0]
  return effective_noise_multiplier(event)


def effective_noise_multiplier(event: dp_accounting.DpEvent) -> float:
  """Noise multiplier of the single Gaussian equivalent to `event`.

  Accepts a GaussianDpEvent, a ComposedDpEvent of GaussianDpEvents (the
  adaptive-clipping aggregator's event) or a NonPrivateDpEvent (plain FedAvg).
  A zero multiplier means no noise.

  Raises:
    UnsupportedDpEventError: any other event.
  """
  if isinstance(event, dp_accounting.NonPrivateDpEvent):
    return 0.0
  if isinstance(event, dp_accounting.GaussianDpEvent):
    return float(event.noise_multiplier)
  if isinstance(event, dp_accounting.ComposedDpEvent):
    multipliers = [effective_noise_multiplier(e) for e in event.events]
    if any(z == 0.0 for z in multipliers):
      return 0.0
    return math.fsum(z**-2 for z in multipliers) ** -0.5
  raise UnsupportedDpEventError(
      f'Expected a Gaussian or composed-Gaussian aggregator event. Found {event}.')
