"""Prints the cost of the per-round epsilon curve (RDP + PLD) of a report.

  .venv/bin/python benchmarks/bench_accounting.py

PLD cost grows as the noise multiplier falls and q rises (a wider privacy
loss distribution); this shows what a report of T rounds costs.
"""

import time

import dp_accounting

from tff_stroke import accounting

SETTINGS = [(0.05, 1.0), (1 / 3, 1.0), (1 / 3, 0.5), (1 / 3, 0.3)]
ROUNDS = [10, 30]
DELTA = 1e-5


def main():
  print(f'{"q":>6} {"z":>5} {"rounds":>6} {"seconds":>8} {"eps_pld":>9} {"eps_rdp":>9}')
  for q, z in SETTINGS:
    event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z))
    for rounds in ROUNDS:
      start = time.perf_counter()
      curve = accounting.epsilon_per_round([event] * rounds, DELTA)
      seconds = time.perf_counter() - start
      print(f'{q:6.3f} {z:5.2f} {rounds:6d} {seconds:8.2f} '
            f'{curve[-1].epsilon_pld:9.3f} {curve[-1].epsilon_rdp:9.3f}')


if __name__ == '__main__':
  main()
