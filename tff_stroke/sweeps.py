"""Sweeps: a grid of federated runs and the privacy-utility table they make.

A sweep file (JSON) names the settings shared by every run, the grid, extra
runs and the references:

  {"name": "noise_small",
   "base": {"data_dir": "runs/demo_prepared", "total_rounds": 15, ...},
   "grid": {"noise_multiplier": [0.3, 0.6]},
   "runs": [{"aggregator": "none", "noise_multiplier": 0}],
   "centralized": {"epochs": 10}}

Every key is a setting of `experiment.ExperimentConfig` (of
`centralized.CentralizedConfig` under "centralized"). The grid is the
cartesian product of its lists; "runs" adds single points (at least one of
the two is needed). Each run has its
own folder under ROOT/NAME/, named by the settings it changes; a run whose
folder holds summary.json is finished and not run again, an unfinished one
resumes. The table has one row per run: epsilon at delta and held-out
volume Dice and lesion-wise F1.
"""

import csv
import dataclasses
import itertools
import json
import math
import os
from typing import Optional

from tff_stroke import centralized
from tff_stroke import experiment
from tff_stroke import run_folder

# Set by the sweep for every run, never by the sweep file.
_RESERVED = ('root_output_dir', 'experiment_name')
CENTRALIZED_NAME = 'centralized'
TABLE_FIELDS = ('run', 'aggregator', 'noise_multiplier', 'clients_per_round', 'total_rounds',
                'rounds_completed', 'delta', 'epsilon_pld', 'epsilon_rdp', 'holdout_dice',
                'holdout_lesion_f1')


@dataclasses.dataclass(frozen=True)
class SweepRun:
  """One run of a sweep: its folder name and the settings it is given."""
  name: str
  settings: dict
  centralized: bool = False


def _field_names(config_class) -> set[str]:
  return {f.name for f in dataclasses.fields(config_class)} - set(_RESERVED)


def _check_keys(settings: dict, config_class, where: str) -> None:
  unknown = sorted(set(settings) - _field_names(config_class))
  if unknown:
    raise ValueError(f'{where}: unknown setting(s) {unknown}; known: '
                     f'{sorted(_field_names(config_class))}')


def _run_name(changes: dict) -> str:
  if not changes:
    return 'base'
  return '_'.join(f'{key}-{value}' for key, value in sorted(changes.items()))


def load_sweep(path: str) -> tuple[str, list[SweepRun]]:
  """(sweep name, its runs) from a sweep file.

  Raises:
    ValueError: the file is not a sweep, or names unknown settings.
  """
  try:
    with open(path) as f:
      spec = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f'{path}: cannot read the sweep file ({e})') from e
  for key in ('name', 'base'):
    if key not in spec:
      raise ValueError(f'{path}: the sweep file needs {key!r}')
  unknown = sorted(set(spec) - {'name', 'description', 'base', 'grid', 'runs', 'centralized'})
  if unknown:
    raise ValueError(f'{path}: unknown section(s) {unknown}')
  base, grid = spec['base'], spec.get('grid', {})
  _check_keys(base, experiment.ExperimentConfig, f'{path}: base')
  _check_keys(grid, experiment.ExperimentConfig, f'{path}: grid')
  if any(not isinstance(values, list) or not values for values in grid.values()):
    raise ValueError(f'{path}: every grid entry must be a non-empty list')
  points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())
            ] if grid else []
  points += spec.get('runs', [])
  if not points:
    raise ValueError(f'{path}: the sweep file names no run (give "grid" or "runs")')
  runs = []
  for point in points:
    _check_keys(point, experiment.ExperimentConfig, f'{path}: run {point}')
    runs.append(SweepRun(_run_name(point), {**base, **point}))
  if 'centralized' in spec:
    settings = {'data_dir': base.get('data_dir'), **spec['centralized']}
    _check_keys(settings, centralized.CentralizedConfig, f'{path}: centralized')
    runs.append(SweepRun(CENTRALIZED_NAME, settings, centralized=True))
  names = [r.name for r in runs]
  if len(set(names)) != len(names):
    raise ValueError(f'{path}: two runs have the same settings: {sorted(names)}')
  return spec['name'], runs


def command(run: SweepRun, sweep_dir: str) -> list[str]:
  """The `python -m experiments.*` arguments of `run` (after the interpreter)."""
  module = 'experiments.run_centralized' if run.centralized else 'experiments.run_dp_fedavg'
  args = ['-m', module, f'--root_output_dir={sweep_dir}', f'--experiment_name={run.name}']
  for key, value in sorted(run.settings.items()):
    if isinstance(value, bool):
      args.append(f'--{key}' if value else f'--no{key}')
    elif value is None and key == 'zeroing_norm':
      args.append('--zeroing_norm=-1')
    elif value is not None:
      args.append(f'--{key}={value}')
  return args


def is_finished(run: SweepRun, sweep_dir: str) -> bool:
  return os.path.exists(os.path.join(sweep_dir, run.name, run_folder.SUMMARY_NAME))


def table_rows(runs: list[SweepRun], sweep_dir: str) -> list[dict]:
  """One row per finished federated run, from its summary and config."""
  rows = []
  for run in runs:
    if run.centralized or not is_finished(run, sweep_dir):
      continue
    run_dir = os.path.join(sweep_dir, run.name)
    summary = run_folder.read_summary(run_dir)
    with open(os.path.join(run_dir, run_folder.CONFIG_NAME)) as f:
      config = json.load(f)
    rows.append({'run': run.name, **{k: config.get(k) for k in TABLE_FIELDS[1:5]},
                 **{k: summary.get(k) for k in TABLE_FIELDS[5:]}})
  return rows


def centralized_dice(runs: list[SweepRun], sweep_dir: str) -> Optional[float]:
  for run in runs:
    if run.centralized and is_finished(run, sweep_dir):
      return run_folder.read_summary(os.path.join(sweep_dir, run.name))['holdout_dice']
  return None


def _fmt(value) -> str:
  if value is None:
    return 'not private'
  return f'{value:.4g}' if isinstance(value, float) else str(value)


def write_table(rows: list[dict], central_dice: Optional[float], sweep_dir: str) -> None:
  """privacy_utility.csv, privacy_utility.md and privacy_utility.png in `sweep_dir`."""
  with open(os.path.join(sweep_dir, 'privacy_utility.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=TABLE_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
  lines = ['# Privacy against utility', '',
           'Epsilon at delta for the unit of privacy of each run (PLD where it applies, '
           'else RDP); held-out volume Dice and lesion-wise F1 (mean over subjects).', '',
           '| run | aggregator | z | m | rounds | epsilon (PLD) | epsilon (RDP) | Dice | '
           'lesion F1 |', '|---|---|---:|---:|---:|---:|---:|---:|---:|']
  for row in rows:
    lines.append(f'| {row["run"]} | {row["aggregator"]} | {row["noise_multiplier"]} | '
                 f'{row["clients_per_round"]} | {row["rounds_completed"]} | '
                 f'{_fmt(row["epsilon_pld"])} | {_fmt(row["epsilon_rdp"])} | '
                 f'{row["holdout_dice"]:.3f} | {row["holdout_lesion_f1"]:.3f} |')
  if central_dice is not None:
    lines += ['', f'Centralised reference (pooled data, not private): Dice {central_dice:.3f}.']
  with open(os.path.join(sweep_dir, 'privacy_utility.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  _plot(rows, central_dice, os.path.join(sweep_dir, 'privacy_utility.png'))


def _plot(rows: list[dict], central_dice: Optional[float], path: str) -> None:
  """Epsilon against Dice, one point per private run; references as lines."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  figure, axes = plt.subplots(figsize=(6, 4))
  private = [r for r in rows if _epsilon(r) is not None]
  axes.scatter([_epsilon(r) for r in private], [r['holdout_dice'] for r in private])
  for row in private:
    axes.annotate(f'{row["aggregator"]} z={row["noise_multiplier"]}',
                  (_epsilon(row), row['holdout_dice']), fontsize=7)
  for row in rows:
    if _epsilon(row) is None:
      axes.axhline(row['holdout_dice'], color='gray', linestyle=':',
                   label=f'{row["aggregator"]} (not private)')
  if central_dice is not None:
    axes.axhline(central_dice, color='black', linestyle='--', label='centralised')
  if private and all(_epsilon(r) > 0 for r in private):
    axes.set_xscale('log')
  axes.set_xlabel(f'epsilon at delta = {rows[0]["delta"]:g}' if rows else 'epsilon')
  axes.set_ylabel('held-out volume Dice')
  axes.set_title('Privacy against utility')
  if axes.get_legend_handles_labels()[0]:
    axes.legend(fontsize=7)
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)


def _epsilon(row: dict) -> Optional[float]:
  value = row['epsilon_pld'] if row['epsilon_pld'] is not None else row['epsilon_rdp']
  return None if value is None or math.isinf(value) else value
