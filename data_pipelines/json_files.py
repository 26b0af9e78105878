"""JSON files written atomically: a temporary file, then a rename."""

import json
import os


def write_json_atomically(value, path: str, **dump_options) -> None:
  """Writes `value` to `path` so that readers see the old or the new file only."""
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  with open(path + '.tmp', 'w') as f:
    json.dump(value, f, **dump_options)
  os.replace(path + '.tmp', path)
