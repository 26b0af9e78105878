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
  image_size = manifest['image_size']
  return tff.simulation.datasets.FilePerUserClientData(
      files, lambda path: tfrecords.read_slices(path, image_size))


def holdout_path(data_dir: str, manifest: dict) -> str:
  return os.path.join(data_dir, manifest['holdout']['file'])


def pooled_dataset(data_dir: str, manifest: dict) -> tf.data.Dataset:
  """Every training client's slices as one dataset, for centralised baselines."""
  paths = [os.path.join(data_dir, manifest['clients'][c]['file'])
           for c in sorted(manifest['clients'])]
  return tf.data.TFRecordDataset(paths).map(
      lambda s: tfrecords.parse_slice(s, manifest['image_size']))
