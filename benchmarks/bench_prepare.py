"""Prints the speed and memory of `data_pipelines.prepare` against bare nibabel loading.

  .venv/bin/python benchmarks/bench_prepare.py [SUBJECTS] [VOXEL_SIZE_MM]

Writes a synthetic ATLAS R2.0 tree (default 40 subjects at 2 mm, in 4 sites),
then, each in a fresh process:
- loads and decompresses every image and mask with nibabel alone (the floor);
- converts the tree at its own spacing with 1 and 2 workers, and a quarter of
  it with 1 worker (memory must not grow with the number of subjects).
For each it prints seconds, subjects per second, peak RSS (the process and
its workers) and the ratio of its time to the bare loading time.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import resource  # pylint: disable=g-import-not-at-top
import subprocess
import sys
import tempfile
import time

SITES = 4


def _child(mode: str, bids_dir: str, output_dir: str, workers: int, voxel_size_mm: int) -> None:
  """Runs one measurement in this process and prints 'seconds peak_rss_mb subjects'."""
  import nibabel as nib  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from data_pipelines import conversion  # pylint: disable=g-import-not-at-top
  from data_pipelines import layouts  # pylint: disable=g-import-not-at-top
  subjects = layouts.read_dataset(bids_dir).subjects
  start = time.perf_counter()
  if mode == 'load':
    for subject in subjects:
      for path in subject.source_paths:
        np.asarray(nib.load(path).get_fdata(dtype=np.float32))
  else:
    conversion.prepare_dataset(
        bids_dir, output_dir,
        conversion.ConversionOptions(image_size=128, spacing_mm=float(voxel_size_mm),
                                     holdout_fraction=0.2, background_ratio=1.0),
        num_workers=workers)
  seconds = time.perf_counter() - start
  peak_kb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
             + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
  print(f'{seconds:.3f} {peak_kb / 1024:.0f} {len(subjects)}')


def _measure(mode, bids_dir, output_dir, workers, voxel_size_mm):
  result = subprocess.run(
      [sys.executable, __file__, '--child', mode, bids_dir, output_dir, str(workers),
       str(voxel_size_mm)], capture_output=True, text=True, check=True)
  seconds, rss_mb, subjects = result.stdout.split()[-3:]
  return float(seconds), float(rss_mb), int(subjects)


def main():
  from data_pipelines import synthetic  # pylint: disable=g-import-not-at-top
  num_subjects = int(sys.argv[1]) if len(sys.argv) > 1 else 40
  voxel_size_mm = int(sys.argv[2]) if len(sys.argv) > 2 else 2
  with tempfile.TemporaryDirectory() as folder:
    trees = {}
    for count in (num_subjects, max(SITES, num_subjects // 4)):
      trees[count] = os.path.join(folder, f'bids_{count}')
      start = time.perf_counter()
      synthetic.synthesize_tree(trees[count], num_sites=SITES, subjects_per_site=count // SITES,
                                seed=0, voxel_size_mm=voxel_size_mm)
      print(f'synthesized {count} subjects at {voxel_size_mm} mm in '
            f'{time.perf_counter() - start:.1f}s', flush=True)
    bids_dir = trees[num_subjects]
    load_seconds, load_rss, _ = _measure('load', bids_dir, '', 1, voxel_size_mm)
    print(f'{"what":<34} {"subjects":>8} {"seconds":>8} {"subj/s":>7} {"peak RSS MB":>11} '
          f'{"x load":>7}')
    print(f'{"nibabel load + decompress only":<34} {num_subjects:8d} {load_seconds:8.2f} '
          f'{num_subjects / load_seconds:7.2f} {load_rss:11.0f} {1.0:7.2f}', flush=True)
    for label, tree, workers in (('prepare, 1 worker', bids_dir, 1),
                                 ('prepare, 2 workers', bids_dir, 2),
                                 ('prepare, 1 worker, quarter tree', trees[min(trees)], 1)):
      seconds, rss, subjects = _measure('convert', tree, os.path.join(folder, 'out'),
                                        workers, voxel_size_mm)
      ratio = (seconds / load_seconds * num_subjects / subjects)
      print(f'{label:<34} {subjects:8d} {seconds:8.2f} {subjects / seconds:7.2f} {rss:11.0f} '
            f'{ratio:7.2f}', flush=True)


if __name__ == '__main__':
  if len(sys.argv) > 1 and sys.argv[1] == '--child':
    _child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
  else:
    main()
