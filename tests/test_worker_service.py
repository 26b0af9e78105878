"""TFF's worker_binary as a subprocess: start, wait, stop, and its environment."""

import socket
import subprocess

import portpicker
import psutil
import pytest

from tff_stroke import worker_service


def test_worker_listens_runs_in_its_data_folder_and_stops(tmp_path):
  port = portpicker.pick_unused_port()
  process = worker_service.start(port, str(tmp_path), stderr=subprocess.DEVNULL)
  try:
    worker_service.wait_until_listening(process, port)
    with socket.create_connection(('127.0.0.1', port), timeout=5):
      pass
    worker = psutil.Process(process.pid)
    assert worker.cwd() == str(tmp_path)
    assert worker.environ()['MALLOC_ARENA_MAX'] == '2'
  finally:
    status = worker_service.stop(process)
  assert status is not None and process.poll() is not None


def test_the_environment_keeps_a_setting_the_user_made(monkeypatch):
  monkeypatch.setenv('MALLOC_ARENA_MAX', '8')
  assert worker_service.worker_environment()['MALLOC_ARENA_MAX'] == '8'


def test_a_missing_data_folder_is_refused(tmp_path):
  with pytest.raises(FileNotFoundError, match='not a folder'):
    worker_service.start(8000, str(tmp_path / 'absent'))
