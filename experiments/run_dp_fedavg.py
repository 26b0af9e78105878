"""Trains the U-Net federated (FedAvg, DP-FedAvg or DP-FTRL) and reports epsilon.

  python -m experiments.run_dp_fedavg --data_dir=OUT --root_output_dir=runs \
      --experiment_name=NAME --total_rounds=20 --clients_per_round=3 \
      --noise_multiplier=0.5 --delta=1e-5 [--aggregator=dp_adaptive] \
      [--workers=R001+R002@HOST:PORT,R003@HOST:PORT]

Without --workers the rounds run on TFF's executor in a local subprocess; with
it, on remote workers (experiments.start_worker) that hold the client shards.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging

from tff_stroke import accounting
from tff_stroke import aggregation
from tff_stroke import dp_fedavg
from tff_stroke import execution
from tff_stroke import experiment
from tff_stroke import sampling

# Data and outputs.
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Folder written by data_pipelines.prepare.')
_ROOT_OUTPUT_DIR = flags.DEFINE_string('root_output_dir', 'runs', 'Parent of run folders.')
_EXPERIMENT_NAME = flags.DEFINE_string('experiment_name', None, 'Run folder name.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds sampling, shuffling and initial weights.')
_RESUME = flags.DEFINE_bool(
    'resume', True, 'Continue this run from its last checkpoint if its folder holds one '
    '(same settings only). With --noresume the run folder must be empty.')
_CHECKPOINT_EVERY = flags.DEFINE_integer('checkpoint_every', 1, 'Rounds between checkpoints.')
_CHECKPOINTS_TO_KEEP = flags.DEFINE_integer(
    'checkpoints_to_keep', 0, 'Newest checkpoints kept besides the first; 0 keeps all.')
_EVAL_EVERY = flags.DEFINE_integer(
    'eval_every', 0, 'Evaluate the held-out subjects every this many rounds (metrics.csv, '
    'TensorBoard); 0: only after the last round.')

# Federated training.
_TOTAL_ROUNDS = flags.DEFINE_integer('total_rounds', 20, 'Rounds to run.')
_CLIENTS_PER_ROUND = flags.DEFINE_float(
    'clients_per_round', 2.0, 'Expected clients per round m; q = m / num_clients.')
_SAMPLING = flags.DEFINE_enum('sampling', 'poisson', sampling.SAMPLING_MODES,
                              'Client sampling (the accountant assumes the same).')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 8, 'Client batch size.')
_CLIENT_EPOCHS = flags.DEFINE_integer('client_epochs', 1,
                                      'Passes over its data each client makes per round.')
_CLIENT_OPTIMIZER = flags.DEFINE_enum('client_optimizer', 'sgd', dp_fedavg.OPTIMIZERS,
                                      'Client optimizer (its state is new each round).')
_CLIENT_LEARNING_RATE = flags.DEFINE_float('client_learning_rate', 0.1, 'Client learning rate.')
_SERVER_OPTIMIZER = flags.DEFINE_enum('server_optimizer', 'sgdm', dp_fedavg.OPTIMIZERS,
                                      'Server optimizer applied to the noisy mean update.')
_SERVER_LEARNING_RATE = flags.DEFINE_float('server_learning_rate', 1.0, 'Server learning rate.')
_SERVER_MOMENTUM = flags.DEFINE_float('server_momentum', 0.9, 'Momentum of sgdm on the server.')
_BASE_FILTERS = flags.DEFINE_integer('base_filters', 8, 'U-Net filters at the first level.')
_UNET_DEPTH = flags.DEFINE_integer('unet_depth', 3, 'U-Net down-sampling steps.')
_LOOP = flags.DEFINE_enum('loop', 'dataset_iterator', list(dp_fedavg.LOOPS),
                          "How clients iterate their data (TFF's loop implementation).")

# Aggregation and differential privacy.
_AGGREGATOR = flags.DEFINE_enum(
    'aggregator', 'dp_adaptive', aggregation.AGGREGATORS,
    'none: FedAvg; dp_fixed: Gaussian, fixed clip; dp_adaptive: adaptive clipping '
    "(Andrew et al. 2021); dp_ftrl: tree aggregation (needs --sampling=shuffled).")
_NOISE_MULTIPLIER = flags.DEFINE_float('noise_multiplier', 0.5, 'Effective noise multiplier z.')
_DELTA = flags.DEFINE_float('delta', 1e-5, 'Target delta of the report.')
_TARGET_EPSILON = flags.DEFINE_float(
    'target_epsilon', None, 'If set, stop before the first round whose epsilon would exceed it.')
_BUDGET_ACCOUNTANT = flags.DEFINE_enum('budget_accountant', 'pld', accounting.ACCOUNTANTS,
                                       'Accountant of --target_epsilon.')
_CLIPPED_COUNT_STDDEV = flags.DEFINE_float(
    'clipped_count_stddev', None, 'Noise stddev of the clipped count; default '
    '0.05 * clients_per_round. Must exceed noise_multiplier / 2.')
_L2_NORM_CLIP = flags.DEFINE_float(
    'l2_norm_clip', 0.1, 'Clip norm: fixed for dp_fixed and dp_ftrl, initial for dp_adaptive.')
_TARGET_QUANTILE = flags.DEFINE_float('target_unclipped_quantile', 0.5,
                                      'Quantile of update norms the clip tracks.')
_CLIP_LEARNING_RATE = flags.DEFINE_float('clip_learning_rate', 0.2, 'Clip adaptation rate.')
_ZEROING_NORM = flags.DEFINE_float(
    'zeroing_norm', 100.0, 'Updates with a larger max-abs value are zeroed; '
    'a negative value turns zeroing off.')

# Execution.
_WORKERS = flags.DEFINE_list(
    'workers', [], 'Remote TFF workers (experiments.start_worker), HOST:PORT each, or '
    'SITE[+SITE...]@HOST:PORT to send each site\'s clients to the worker holding its '
    'shards. Empty: TFF\'s local executor.')
_WORKER_CONNECT_TIMEOUT = flags.DEFINE_float(
    'worker_connect_timeout', 10.0, 'Seconds each worker has to answer at start-up.')
_WORKER_RETRY_SECONDS = flags.DEFINE_float(
    'worker_retry_seconds', 60.0, 'Seconds a worker that stops answering mid-round may '
    'take to come back before the run stops (resumable) after its last finished round.')

flags.mark_flags_as_required(['data_dir', 'experiment_name'])


def config_from_flags() -> experiment.ExperimentConfig:
  return experiment.ExperimentConfig(
      data_dir=_DATA_DIR.value, root_output_dir=_ROOT_OUTPUT_DIR.value,
      experiment_name=_EXPERIMENT_NAME.value, total_rounds=_TOTAL_ROUNDS.value,
      clients_per_round=_CLIENTS_PER_ROUND.value,
      noise_multiplier=_NOISE_MULTIPLIER.value, delta=_DELTA.value,
      aggregator=_AGGREGATOR.value, sampling=_SAMPLING.value, target_epsilon=_TARGET_EPSILON.value,
      budget_accountant=_BUDGET_ACCOUNTANT.value, clipped_count_stddev=_CLIPPED_COUNT_STDDEV.value,
      l2_norm_clip=_L2_NORM_CLIP.value,
      target_unclipped_quantile=_TARGET_QUANTILE.value,
      clip_learning_rate=_CLIP_LEARNING_RATE.value,
      zeroing_norm=_ZEROING_NORM.value if _ZEROING_NORM.value >= 0 else None,
      client_optimizer=_CLIENT_OPTIMIZER.value,
      client_learning_rate=_CLIENT_LEARNING_RATE.value,
      server_optimizer=_SERVER_OPTIMIZER.value,
      server_learning_rate=_SERVER_LEARNING_RATE.value,
      server_momentum=_SERVER_MOMENTUM.value, batch_size=_BATCH_SIZE.value,
      client_epochs=_CLIENT_EPOCHS.value,
      base_filters=_BASE_FILTERS.value, unet_depth=_UNET_DEPTH.value, seed=_SEED.value,
      checkpoint_every=_CHECKPOINT_EVERY.value,
      checkpoints_to_keep=_CHECKPOINTS_TO_KEEP.value, eval_every=_EVAL_EVERY.value,
      loop=_LOOP.value)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  config = config_from_flags()
  try:
    experiment.validate_data(config)
    workers = execution.parse_workers(_WORKERS.value) if _WORKERS.value else []
    context = experiment.execution_context(
        config.data_dir, workers, connect_timeout_seconds=_WORKER_CONNECT_TIMEOUT.value,
        retry_seconds=_WORKER_RETRY_SECONDS.value)
  except (ValueError, FileNotFoundError) as e:
    raise app.UsageError(str(e)) from e
  try:
    with context:
      summary = experiment.run_experiment(config, resume=_RESUME.value,
                                          shards_on_workers=bool(workers))
  except execution.WorkerUnreachableError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  except execution.WorkerLostError as e:
    print(f'error: {e}. The run stopped at a round boundary with its checkpoint and '
          'ledger intact; restart the worker and rerun the same command to resume.',
          file=sys.stderr)
    sys.exit(3)
  print(f'Rounds:          {summary["rounds_completed"]} ({summary["stop_reason"]}), '
        f'{summary["training_seconds"]:.0f}s of training')
  print(f'Run folder:      {summary["run_dir"]}')
  print(f'Privacy report:  {summary["report"]} (and report.md, epsilon.png)')
  print(f'SavedModel:      {summary["saved_model"]} (model card in its assets)')
  print(f'Epsilon (delta={summary["delta"]:g}): PLD {_fmt(summary["epsilon_pld"])}, '
        f'RDP {_fmt(summary["epsilon_rdp"])}')
  print(f'Held-out:        Dice {_fmt(summary["holdout_dice"])}, lesion-wise F1 '
        f'{_fmt(summary["holdout_lesion_f1"])} (volume metrics, mean over '
        f'{summary["holdout_subjects"]} subjects; per site in summary.md)')
  if summary['held_out_sites_dice'] is not None:
    print(f'Held-out sites:  Dice {summary["held_out_sites_dice"]:.3f} '
          f'({summary["held_out_sites_subjects"]} subjects of sites never trained on)')


def _fmt(value):
  return 'n/a (no finite bound)' if value is None else f'{value:.3f}'


if __name__ == '__main__':
  app.run(main)
