"""The TFRecord format of preprocessed slices: writing and parsing."""

import struct

import numpy as np
import tensorflow as tf


def serialize_slice(image: np.ndarray, mask: np.ndarray, *, subject_id: str,
                    site: str, slice_index: int) -> bytes:
  """Serialises one [H, W] or [H, W, C] slice and its [H, W] mask."""
  feature = {
      'image': _bytes(np.asarray(image, np.float32).tobytes()),
      'mask': _bytes(np.asarray(mask, np.uint8).tobytes()),
      'height': _int(image.shape[0]),
      'width': _int(image.shape[1]),
      'channels': _int(image.shape[2] if image.ndim == 3 else 1),
      'subject_id': _bytes(subject_id.encode()),
      'site': _bytes(site.encode()),
      'slice_index': _int(slice_index),
  }
  return tf.train.Example(
      features=tf.train.Features(feature=feature)).SerializeToString()


_FEATURES = {
    'image': tf.io.FixedLenFeature([], tf.string),
    'mask': tf.io.FixedLenFeature([], tf.string),
    'height': tf.io.FixedLenFeature([], tf.int64),
    'width': tf.io.FixedLenFeature([], tf.int64),
    'channels': tf.io.FixedLenFeature([], tf.int64),
    'subject_id': tf.io.FixedLenFeature([], tf.string),
    'site': tf.io.FixedLenFeature([], tf.string),
    'slice_index': tf.io.FixedLenFeature([], tf.int64),
}


def parse_slice(serialized: tf.Tensor, image_size: int,
                channels: int = 1) -> dict[str, tf.Tensor]:
  """Parses one example into image [S, S, C] float32 and mask [S, S, 1] float32."""
  parsed = tf.io.parse_single_example(serialized, _FEATURES)
  image = tf.reshape(tf.io.decode_raw(parsed['image'], tf.float32),
                     [image_size, image_size, channels])
  mask = tf.reshape(tf.cast(tf.io.decode_raw(parsed['mask'], tf.uint8),
                            tf.float32), [image_size, image_size, 1])
  return {'image': image, 'mask': mask, 'subject_id': parsed['subject_id'],
          'site': parsed['site'], 'slice_index': parsed['slice_index']}


def read_slices(paths: str | list[str], image_size: int, channels: int = 1,
                compression: str = '') -> tf.data.Dataset:
  """Parsed slices from one TFRecord file or several in turn ('' or 'GZIP' compressed)."""
  return tf.data.TFRecordDataset(paths, compression_type=compression).map(
      lambda s: parse_slice(s, image_size, channels))


def iterate_records(path: str):
  """The serialised records of an uncompressed TFRecord file, read without TF ops.

  The format is, per record: uint64 length, uint32 masked CRC of the length,
  the data, uint32 masked CRC of the data (little endian). CRCs are not
  checked: the files are the conversion's own staging files.
  """
  with open(path, 'rb') as f:
    while header := f.read(12):
      (length,) = struct.unpack('<Q', header[:8])
      data = f.read(length)
      f.read(4)
      yield data


def _bytes(value: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
