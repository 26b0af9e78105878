"""Runs a sweep of federated runs and writes the privacy-utility table.

  python -m experiments.sweep --config=experiments/sweeps/noise_small.json \
      [--root_output_dir=runs/sweeps]

Each run is `experiments.run_dp_fedavg` (or `experiments.run_centralized`) in
its own process, under ROOT/NAME/RUN. Finished runs are skipped, unfinished
ones resume, so rerunning the command after an interruption completes the
sweep. Writes ROOT/NAME/privacy_utility.{csv,md,png}.
"""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import subprocess  # pylint: disable=g-import-not-at-top
import sys
import time

from absl import app
from absl import flags

from tff_stroke import sweeps

_CONFIG = flags.DEFINE_string('config', None, 'Sweep file (JSON); see tff_stroke/sweeps.py.')
_ROOT_OUTPUT_DIR = flags.DEFINE_string('root_output_dir', 'runs/sweeps',
                                       'Parent of the sweep folder.')
flags.mark_flags_as_required(['config'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  try:
    name, runs = sweeps.load_sweep(_CONFIG.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  sweep_dir = os.path.join(_ROOT_OUTPUT_DIR.value, name)
  os.makedirs(sweep_dir, exist_ok=True)
  failed = []
  for index, run in enumerate(runs, start=1):
    prefix = f'[{index}/{len(runs)}] {run.name}'
    if sweeps.is_finished(run, sweep_dir):
      print(f'{prefix}: finished earlier; skipped')
      continue
    print(f'{prefix}: running (log: {os.path.join(sweep_dir, run.name + ".log")})', flush=True)
    start = time.monotonic()
    with open(os.path.join(sweep_dir, run.name + '.log'), 'a') as log:
      status = subprocess.run([sys.executable, *sweeps.command(run, sweep_dir)],
                              stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    print(f'{prefix}: {"done" if status == 0 else f"failed (exit {status})"} in '
          f'{time.monotonic() - start:.0f}s', flush=True)
    if status:
      failed.append(run.name)
  rows = sweeps.table_rows(runs, sweep_dir)
  sweeps.write_table(rows, sweeps.centralized_dice(runs, sweep_dir), sweep_dir)
  print(f'Privacy-utility table: {os.path.join(sweep_dir, "privacy_utility.md")} '
        f'(and .csv, .png), {len(rows)} federated run(s)')
  if failed:
    print(f'{len(failed)} run(s) failed: {", ".join(failed)}; their logs are in {sweep_dir}; '
          'rerun the command to resume them')
    return 1
  return 0


if __name__ == '__main__':
  app.run(main)
