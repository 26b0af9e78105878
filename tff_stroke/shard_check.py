"""Checks sampled clients' shards where they are read, before each round.

A shard that is missing, truncated or corrupt on its worker would fail the
whole round. The check reads each sampled client's TFRecord file where the
round would read it (on its worker; the coordinator never sees the file),
counting the records that pass TFRecord's CRC checks, and compares the
count with the manifest. Clients whose shard fails are left out of the round.

Accounting is unchanged: a left-out client was still sampled with
probability q, and the noisy mean keeps its fixed denominator, so the
round's DpEvent is the one of the full sample; leaving a client out only
lowers what the round reveals about it.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

OK, MISSING, UNREADABLE = 0, 1, 2


class ShardCheck:
  """Runs the check for a round's client keys and explains each failure."""

  def __init__(self, files: Mapping[str, str], num_examples: Mapping[str, int],
               compression: str, key_separator: str):
    """`files`: client id -> shard path as the worker resolves it."""
    self._files = dict(files)
    self._num_examples = dict(num_examples)
    self._separator = key_separator
    self._computation = _build_computation(self._files, self._num_examples, compression,
                                           key_separator)

  def failures(self, keys: Sequence[str]) -> dict[str, str]:
    """Client id -> why its shard cannot be used, for the failing keys only."""
    if not keys:
      return {}
    results = self._computation(list(keys))
    failures = {}
    for result in results:
      key, status, records = _text(result[0]), int(result[1]), int(result[2])
      client_id = key.split(self._separator)[0]
      if status == MISSING:
        failures[client_id] = f'shard {self._files[client_id]} is missing on its worker'
      elif status == UNREADABLE:
        failures[client_id] = (
            f'shard {self._files[client_id]} is unreadable or altered: {records} intact '
            f'records, the manifest lists {self._num_examples[client_id]}')
    return failures


def _build_computation(files, num_examples, compression, separator):
  client_ids = sorted(files)

  @tff.tensorflow.computation(tf.string)
  def check_one(key):
    # One table (TFF initialises a single table per computation reliably).
    index = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        client_ids, tf.range(len(client_ids), dtype=tf.int64)), default_value=-1).lookup(
            tf.strings.split(key, separator)[0])
    path = tf.gather([files[c] for c in client_ids], index)
    expected = tf.gather(tf.constant([num_examples[c] for c in client_ids], tf.int64), index)
    exists = tf.size(tf.io.matching_files(path)) > 0

    def count_intact_records():
      return (tf.data.TFRecordDataset(path, compression_type=compression)
              .ignore_errors()
              .reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))

    records = tf.cond(exists, count_intact_records, lambda: tf.constant(0, tf.int64))
    status = tf.where(exists, tf.where(tf.equal(records, expected), OK, UNREADABLE),
                      MISSING)
    return key, tf.cast(status, tf.int32), records

  @tff.federated_computation(tff.FederatedType(np.str_, tff.CLIENTS))
  def check(keys):
    return tff.federated_map(check_one, keys)

  return check


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)
