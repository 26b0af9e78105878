"""Converts an ATLAS R2.0 BIDS tree into per-client TFRecords and a manifest.

  python -m data_pipelines.prepare --bids_dir=DIR --output_dir=OUT \
      --client_unit=site --image_size=64 --spacing_mm=1
"""

from absl import app
from absl import flags

from data_pipelines import conversion

_BIDS_DIR = flags.DEFINE_string('bids_dir', None, 'Root of the ATLAS R2.0 tree.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Folder for TFRecords and manifest.')
_CLIENT_UNIT = flags.DEFINE_enum('client_unit', 'site', conversion.CLIENT_UNITS,
                                 'One client per site or per subject.')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 64, 'Side of the square slices.')
_SPACING_MM = flags.DEFINE_float(
    'spacing_mm', 1.0, 'Isotropic voxel size (mm) every volume is resampled to.')
_HOLDOUT_FRACTION = flags.DEFINE_float(
    'holdout_fraction', 0.2, 'Fraction of each site\'s subjects held out.')
_BACKGROUND_RATIO = flags.DEFINE_float(
    'background_ratio', None, 'If set, training clients keep every lesion slice and at most '
    'this many lesion-free slices per lesion slice. Held-out subjects keep all.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the hold-out split and slice choice.')
_STRICT = flags.DEFINE_bool('strict', False, 'Exit with status 2 if any subject was skipped.')
flags.mark_flags_as_required(['bids_dir', 'output_dir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  manifest = conversion.prepare_dataset(
      _BIDS_DIR.value, _OUTPUT_DIR.value, client_unit=_CLIENT_UNIT.value,
      image_size=_IMAGE_SIZE.value, spacing_mm=_SPACING_MM.value,
      holdout_fraction=_HOLDOUT_FRACTION.value,
      background_ratio=_BACKGROUND_RATIO.value, seed=_SEED.value)
  clients = manifest['clients']
  print(f'{len(clients)} clients ({manifest["client_unit"]}), '
        f'{sum(c["num_examples"] for c in clients.values())} training slices, '
        f'{manifest["holdout"]["num_examples"]} held-out slices, '
        f'{len(manifest["skipped"])} subjects skipped')
  print(f'Manifest: {_OUTPUT_DIR.value}/{conversion.MANIFEST_NAME}')
  if manifest['skipped'] and _STRICT.value:
    return 2


if __name__ == '__main__':
  app.run(main)
