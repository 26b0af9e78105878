"""TFF ClientData over a prepared folder: one TFRecord file per client."""

import os

import tensorflow as tf
import tensorflow_federated as tff

from data_pipelines import tfrecords


def client_files(data_dir: str, manifest: dict, *, on_workers: bool = False) -> dict[str, str]:
  """Client id -> its TFRecord file, as the process that reads it sees it.

  Here: absolute paths, each checked. On remote workers: paths relative to
  the worker's data folder (its working directory), not checked here.

  Raises:
    FileNotFoundError: a client file named in the manifest is missing here.
  """
  if on_workers:
    return {client_id: client['file'] for client_id, client in manifest['clients'].items()}
  files = {client_id: os.path.abspath(os.path.join(data_dir, client['file']))
           for client_id, client in manifest['clients'].items()}
  for client_id, path in files.items():
    if not os.path.exists(path):
      raise FileNotFoundError(f'{path}: file of client {client_id} is missing')
  return files


def build_client_data(data_dir: str, manifest: dict, *, on_workers: bool = False
                      ) -> tff.simulation.datasets.FilePerUserClientData:
  """ClientData over `client_files`, yielding parsed slices (`tfrecords.parse_slice`).

  Raises:
    FileNotFoundError: a client file is missing here (not `on_workers`).
  """
  return tff.simulation.datasets.FilePerUserClientData(
      client_files(data_dir, manifest, on_workers=on_workers),
      lambda path: read_file(path, manifest))


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
