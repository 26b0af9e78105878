"""The run folder: a run never overwrites another's outputs.

A folder is new (empty or absent), resumable (its config.json equals this
run's settings), or finished (it also holds summary.json, written last).
"""

import json
import os

from data_pipelines import json_files

CONFIG_NAME = 'config.json'
SUMMARY_NAME = 'summary.json'
NEW, RESUME, FINISHED = 'new', 'resume', 'finished'


def open_run_folder(run_dir: str, config_record: dict, *, resume: bool) -> str:
  """Returns NEW, RESUME or FINISHED; writes config.json into a new folder.

  Raises:
    FileExistsError: the folder holds files and resume is off, or it holds
      another run (different settings or no config.json). The message names
      the differing settings.
  """
  record = json.loads(json.dumps(config_record))
  if not os.path.isdir(run_dir) or not os.listdir(run_dir):
    os.makedirs(run_dir, exist_ok=True)
    json_files.write_json_atomically(record, os.path.join(run_dir, CONFIG_NAME))
    return NEW
  if not resume:
    raise FileExistsError(f'{run_dir}: run folder exists and is not empty; choose '
                          'another experiment_name, remove it, or resume it')
  config_path = os.path.join(run_dir, CONFIG_NAME)
  if not os.path.exists(config_path):
    raise FileExistsError(f'{run_dir}: not empty and holds no {CONFIG_NAME}; it is '
                          'not a run folder this run can resume')
  with open(config_path) as f:
    saved = json.load(f)
  differing = sorted(k for k in set(saved) | set(record) if saved.get(k) != record.get(k))
  if differing:
    details = ', '.join(f'{k}: {saved.get(k)!r} there, {record.get(k)!r} now'
                        for k in differing)
    raise FileExistsError(f'{run_dir}: holds a run with other settings ({details}); '
                          'choose another experiment_name')
  return FINISHED if os.path.exists(os.path.join(run_dir, SUMMARY_NAME)) else RESUME


def read_summary(run_dir: str) -> dict:
  with open(os.path.join(run_dir, SUMMARY_NAME)) as f:
    return json.load(f)


def write_summary(run_dir: str, summary: dict) -> None:
  json_files.write_json_atomically(summary, os.path.join(run_dir, SUMMARY_NAME))
