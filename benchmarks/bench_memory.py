"""Prints coordinator and worker memory over a long run: it must stay flat.

  .venv/bin/python benchmarks/bench_memory.py [ROUNDS]

A small U-Net (4 filters, depth 2, 32x32 slices) trains DP-FedAvg with
adaptive clipping for ROUNDS rounds (default 200) on a tiny synthetic tree
(3 sites, every site in every round), through the real command line, twice:
on TFF's local executor, and on one remote worker started as
`experiments.start_worker` would (loopback). It prints the RSS of the
coordinator and of the worker process at round 20 and at the last round,
the growth between them (goal: under 10%), and the worker's RSS every 20
rounds.
"""

import os
import subprocess
import sys
import tempfile

import portpicker

import monitor
from tff_stroke import worker_service

FIRST_SAMPLE = 20
SAMPLE_EVERY = 20


def _prepare(root: str) -> str:
  bids, prepared = os.path.join(root, 'bids'), os.path.join(root, 'prepared')
  for command in (
      monitor.python_module('data_pipelines.synthesize', f'--output_dir={bids}',
                            '--num_sites=3', '--subjects_per_site=3', '--voxel_size_mm=6',
                            '--seed=7'),
      monitor.python_module('data_pipelines.prepare', f'--bids_dir={bids}',
                            f'--output_dir={prepared}', '--image_size=32', '--spacing_mm=6',
                            '--holdout_fraction=0.34', '--seed=0')):
    monitor.run_sampling_rss(command, set())
  return prepared


def _command(prepared: str, root: str, name: str, rounds: int, *extra: str) -> list[str]:
  return monitor.python_module(
      'experiments.run_dp_fedavg', f'--data_dir={prepared}', f'--root_output_dir={root}',
      f'--experiment_name={name}', f'--total_rounds={rounds}', '--sampling=all',
      '--clients_per_round=3', '--noise_multiplier=2.0', '--clipped_count_stddev=1.5',
      '--delta=1e-3', '--base_filters=4', '--unet_depth=2', '--checkpoints_to_keep=3',
      *extra)


def _print_row(label, samples, rounds, seconds):
  (c_first, w_first), (c_last, w_last) = samples[FIRST_SAMPLE], samples[rounds]
  print(f'{label:<28} {c_first:9.0f} {c_last:9.0f} {100 * (c_last / c_first - 1):+7.1f}% '
        f'{w_first:9.0f} {w_last:9.0f} {100 * (w_last / w_first - 1):+7.1f}% '
        f'{seconds:8.2f}', flush=True)
  print('  worker MB by round: ' + ' '.join(
      f'{r}:{samples[r][1]:.0f}' for r in sorted(samples)), flush=True)


def main():
  rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
  if rounds <= FIRST_SAMPLE:
    raise SystemExit(f'ROUNDS must exceed {FIRST_SAMPLE}')
  with tempfile.TemporaryDirectory() as root:
    prepared = _prepare(root)
    print(f'{rounds} rounds; RSS in MB at round {FIRST_SAMPLE} and {rounds}')
    print(f'{"execution":<28} {"coord@20":>9} {"coord@end":>9} {"growth":>8} '
          f'{"work@20":>9} {"work@end":>9} {"growth":>8} {"median s":>8}')
    sampled = {*range(FIRST_SAMPLE, rounds, SAMPLE_EVERY), rounds}
    samples, lines = monitor.run_sampling_rss(
        _command(prepared, root, 'local', rounds), sampled)
    _print_row('local executor', samples, rounds,
               sorted(monitor.round_seconds(lines))[rounds // 2])

    port = portpicker.pick_unused_port()
    worker = worker_service.start(port, prepared, stderr=subprocess.DEVNULL)
    try:
      worker_service.wait_until_listening(worker, port)
      samples, lines = monitor.run_sampling_rss(
          _command(prepared, root, 'remote', rounds, f'--workers=localhost:{port}'),
          sampled, worker_pid=worker.pid)
    finally:
      worker_service.stop(worker)
    _print_row('one remote worker (loopback)', samples, rounds,
               sorted(monitor.round_seconds(lines))[rounds // 2])


if __name__ == '__main__':
  main()
