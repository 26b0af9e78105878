"""Writes a synthetic multi-site dataset in the ATLAS R2.0 (or ISLES'22, BraTS) layout.

  python -m data_pipelines.synthesize --output_dir=DIR --num_sites=4 \
      --subjects_per_site=6 --seed=0 [--format=atlas2|isles22|brats]
"""

from absl import app
from absl import flags

from data_pipelines import synthetic

_OUTPUT_DIR = flags.DEFINE_string('output_dir', None, 'Root of the tree to write.')
_NUM_SITES = flags.DEFINE_integer('num_sites', 4, 'Cohorts (sites) R001...')
_SUBJECTS_PER_SITE = flags.DEFINE_integer('subjects_per_site', 6, 'Subjects per site.')
_FORMAT = flags.DEFINE_enum('format', 'atlas2', synthetic.FORMATS, 'Layout to write.')
_SITE_SIZE_SPREAD = flags.DEFINE_float(
    'site_size_spread', 0.0, 'Site sizes vary uniformly within this fraction of '
    'subjects_per_site.')
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed.')
_VOXEL_SIZE_MM = flags.DEFINE_integer('voxel_size_mm', 3, 'Isotropic voxel size in mm.')
flags.mark_flag_as_required('output_dir')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  subjects = synthetic.synthesize_tree(
      _OUTPUT_DIR.value, layout=_FORMAT.value, num_sites=_NUM_SITES.value,
      subjects_per_site=_SUBJECTS_PER_SITE.value, seed=_SEED.value,
      voxel_size_mm=_VOXEL_SIZE_MM.value, site_size_spread=_SITE_SIZE_SPREAD.value,
      progress=print)
  print(f'Wrote {len(subjects)} subjects in {_NUM_SITES.value} sites '
        f'({_FORMAT.value} layout) to {_OUTPUT_DIR.value}')


if __name__ == '__main__':
  app.run(main)
