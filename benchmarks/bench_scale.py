"""Prints round time and memory for 100 and for 1,000 subject clients.

  .venv/bin/python benchmarks/bench_scale.py [ROUNDS]

Synthesizes ATLAS R2.0 trees of 10 sites x 11 and 10 sites x 101 subjects
(6 mm), prepares them with --client_unit=subject and one subject per site
in ten held out (100 and 1,000 clients), then trains ROUNDS (default 20)
DP-FedAvg rounds with Poisson sampling of 20 clients per round expected, a
small U-Net on 32x32 slices. Round time and memory must not depend on the
number of clients: for each tree it prints the median round time (after the
first) and the RSS of the coordinator and of its TFF worker after the
second round and after the last.
"""

import json
import os
import statistics
import sys
import tempfile

import monitor

CLIENTS_PER_ROUND = 20
SITES = 10


def _prepare(root: str, subjects_per_site: int) -> tuple[str, int]:
  """Prepared folder and its number of clients."""
  bids = os.path.join(root, f'bids_{subjects_per_site}')
  prepared = os.path.join(root, f'prepared_{subjects_per_site}')
  for command in (
      monitor.python_module('data_pipelines.synthesize', f'--output_dir={bids}',
                            f'--num_sites={SITES}', f'--subjects_per_site={subjects_per_site}',
                            '--voxel_size_mm=6', '--seed=11'),
      monitor.python_module('data_pipelines.prepare', f'--bids_dir={bids}',
                            f'--output_dir={prepared}', '--client_unit=subject',
                            '--image_size=32', '--spacing_mm=6',
                            f'--holdout_fraction={1 / subjects_per_site}', '--seed=0')):
    monitor.run_sampling_rss(command, set())
  with open(os.path.join(prepared, 'manifest.json')) as f:
    return prepared, len(json.load(f)['clients'])


def main():
  rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
  with tempfile.TemporaryDirectory() as root:
    print(f'{rounds} rounds, Poisson sampling, {CLIENTS_PER_ROUND} clients per round '
          'expected; RSS in MB after round 2 and after the last')
    print(f'{"clients":>8} {"median round s":>14} {"clients/round":>13} {"coord@2":>8} '
          f'{"coord@end":>9} {"worker@2":>8} {"worker@end":>10}')
    for subjects_per_site in (11, 101):
      prepared, num_clients = _prepare(root, subjects_per_site)
      samples, lines = monitor.run_sampling_rss(monitor.python_module(
          'experiments.run_dp_fedavg', f'--data_dir={prepared}', f'--root_output_dir={root}',
          f'--experiment_name=scale_{num_clients}', f'--total_rounds={rounds}',
          f'--clients_per_round={CLIENTS_PER_ROUND}', '--noise_multiplier=0.5',
          '--delta=1e-5', '--base_filters=4', '--unet_depth=2', '--checkpoints_to_keep=3'),
          {2, rounds})
      seconds = monitor.round_seconds(lines)[1:]
      sampled = [int(line.split(': ')[1].split(' clients')[0]) for line in lines
                 if monitor.ROUND_LINE.match(line)]
      (c_2, w_2), (c_end, w_end) = samples[2], samples[rounds]
      print(f'{num_clients:8d} {statistics.median(seconds):14.2f} '
            f'{statistics.mean(sampled):13.1f} {c_2:8.0f} {c_end:9.0f} {w_2:8.0f} '
            f'{w_end:10.0f}', flush=True)


if __name__ == '__main__':
  main()
