"""TFF ClientData over a prepared folder: one TFRecord file per client."""

import os

import tensorflow as tf
import tensorflow_federated as tff

from data_pipelines import tfrecords


def build_client_data(data_dir: str, manifest: dict) -> tff.simulation.datasets.FilePerUserClientData:
  """ClientData whose datasets yield parsed slices (see `tfrecords.parse_slice`).

  Raises:
    FileNotFoundError: a client file named in the manifest is missing.
  """
  files = {client_id: os.path.join(data_dir, client['file'])
           for client_id, client in manifest['clients'].items()}
  for client_id, path in files.items():
    if not os.path.exists(path):
      raise FileNotFoundError(f'{path}: file of client {client_id} is missing')
  return tff.simulation.datasets.FilePerUserClientData(
      files, lambda path: read_file(path, manifest))


def num_channels(manifest: dict) -> int:
  return len(manifest['preprocessing']['channels'])


def read_file(paths: str | list[str], manifest: dict) -> tf.data.Dataset:
  """Parsed slices of one file (or several, in turn) of the prepared folder."""
  return tfrecords.read_slices(paths, manifest['image_size'], num_channels(manifest),
                               manifest['compression'])


def split_dataset(data_dir: str, manifest: dict, split: str) -> tf.data.Dataset:
  """Parsed slices of a held-out split: 'holdout', 'validation' or 'test_sites'.

  Raises:
    KeyError: the conversion wrote no such split.
  """
  return read_file(os.path.join(data_dir, manifest[split]['file']), manifest)


def pooled_dataset(data_dir: str, manifest: dict) -> tf.data.Dataset:
  """Every training client's slices as one dataset, for centralised baselines."""
  paths = [os.path.join(data_dir, manifest['clients'][c]['file'])
           for c in sorted(manifest['clients'])]
  return read_file(paths, manifest)
