"""Converts a stroke or brain-tumour dataset into per-client TFRecords and a manifest.

  python -m data_pipelines.prepare --bids_dir=DIR --output_dir=OUT \
      [--layout=auto|atlas2|isles22|brats] --client_unit=site --image_size=64 --spacing_mm=1
"""

import sys

from absl import app
from absl import flags

from data_pipelines import conversion
from data_pipelines import layouts
from data_pipelines import partitions

_BIDS_DIR = flags.DEFINE_string('bids_dir', None, 'Root of the dataset.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Folder for TFRecords and manifest.')
_LAYOUT = flags.DEFINE_enum('layout', 'auto', ('auto',) + layouts.LAYOUTS,
                            'Dataset layout; auto recognises each by its folders.')
_SITE_COLUMN = flags.DEFINE_string(
    'site_column', None, 'Take each subject\'s site from this column of ROOT/participants.tsv.')
_CLIENT_UNIT = flags.DEFINE_enum('client_unit', 'site', conversion.CLIENT_UNITS,
                                 'One client per site or per subject.')
_PARTITION = flags.DEFINE_enum(
    'partition', 'natural', partitions.PARTITIONS,
    'natural: clients are sites (or subjects); dirichlet: num_clients clients with '
    'Dirichlet(alpha) lesion-load skew; quantity: num_clients clients of Dirichlet(alpha) sizes.')
_NUM_CLIENTS = flags.DEFINE_integer('num_clients', None, 'Clients of a dirichlet or quantity partition.')
_ALPHA = flags.DEFINE_float('alpha', 1.0, 'Dirichlet concentration (smaller: more skew).')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 64, 'Side of the square slices.')
_SPACING_MM = flags.DEFINE_float(
    'spacing_mm', 1.0, 'Isotropic voxel size (mm) every volume is resampled to.')
_HOLDOUT_FRACTION = flags.DEFINE_float(
    'holdout_fraction', 0.2, 'Fraction of each client\'s subjects held out for testing.')
_VALIDATION_FRACTION = flags.DEFINE_float(
    'validation_fraction', 0.0, 'Fraction of each client\'s subjects held out for validation.')
_TEST_SITES = flags.DEFINE_list('test_sites', [], 'Sites held out whole (generalisation test).')
_BACKGROUND_RATIO = flags.DEFINE_float(
    'background_ratio', None, 'If set, training clients keep every lesion slice and at most '
    'this many lesion-free slices per lesion slice. Held-out subjects keep all.')
_NORMALIZATION = flags.DEFINE_enum(
    'normalization', 'zscore', ('zscore', 'percentile'),
    'Per-volume intensity normalisation: z-score over the brain, or the same after '
    'clipping to the 0.5 and 99.5 percentiles of the brain.')
_COMPRESSION = flags.DEFINE_enum('compression', 'none', ('none', 'gzip'),
                                 'Compression of the TFRecord files.')
_NUM_WORKERS = flags.DEFINE_integer('num_workers', 1, 'Processes converting subjects.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of partition, split and slice choice.')
_STRICT = flags.DEFINE_bool('strict', False, 'Exit with status 2 if any subject was skipped.')
flags.mark_flags_as_required(['bids_dir', 'output_dir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  options = conversion.ConversionOptions(
      image_size=_IMAGE_SIZE.value, spacing_mm=_SPACING_MM.value,
      client_unit=_CLIENT_UNIT.value, partition=_PARTITION.value,
      num_clients=_NUM_CLIENTS.value, alpha=_ALPHA.value,
      holdout_fraction=_HOLDOUT_FRACTION.value,
      validation_fraction=_VALIDATION_FRACTION.value,
      test_sites=tuple(_TEST_SITES.value), background_ratio=_BACKGROUND_RATIO.value,
      compression='' if _COMPRESSION.value == 'none' else 'GZIP',
      normalization=_NORMALIZATION.value, seed=_SEED.value)
  try:
    manifest = conversion.prepare_dataset(
        _BIDS_DIR.value, _OUTPUT_DIR.value, options, layout=_LAYOUT.value,
        site_column=_SITE_COLUMN.value, num_workers=_NUM_WORKERS.value)
  except (ValueError, FileNotFoundError) as e:
    sys.exit(f'prepare: {e}')
  clients = manifest['clients']
  held_out = ', '.join(f'{manifest[split]["num_examples"]} {split}'
                       for split in ('holdout', 'validation', 'test_sites') if split in manifest)
  print(f'{manifest["source"]["layout"]}: {len(clients)} clients '
        f'({manifest["client_unit"]}, {manifest["partition"]["scheme"]}), '
        f'{sum(c["num_examples"] for c in clients.values())} training slices; held out: '
        f'{held_out} slices; {len(manifest["skipped"])} subjects skipped')
  for entry in manifest['skipped']:
    print(f'  skipped {entry["subject_id"]}: {entry["reason"]}')
  print(f'Manifest: {_OUTPUT_DIR.value}/{conversion.MANIFEST_NAME}')
  if manifest['skipped'] and _STRICT.value:
    return 2


if __name__ == '__main__':
  app.run(main)
