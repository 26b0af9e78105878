"""One DP-FedAvg experiment from a prepared folder to report and SavedModel.

Writes into ROOT/NAME: config.json, metrics.csv, privacy/ledger.json,
privacy/report.json, evaluation.json and saved_model/.
"""

import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Optional

import tensorflow as tf
import tensorflow_federated as tff

from data_pipelines import client_data as client_data_lib
from data_pipelines import conversion
from data_pipelines import tfrecords
from tff_stroke import budget as budget_lib
from tff_stroke import dp_fedavg
from tff_stroke import evaluation
from tff_stroke import export
from tff_stroke import ledger as ledger_lib
from tff_stroke import models
from tff_stroke import privacy_report
from tff_stroke import sampling as sampling_lib
from tff_stroke import training_loop


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """Every setting of a run; written to config.json."""
  data_dir: str
  root_output_dir: str
  experiment_name: str
  total_rounds: int
  clients_per_round: float
  noise_multiplier: float
  delta: float
  sampling: str = 'poisson'
  target_epsilon: Optional[float] = None
  budget_accountant: str = 'pld'
  clipped_count_stddev: Optional[float] = None
  initial_l2_norm_clip: float = 0.1
  target_unclipped_quantile: float = 0.5
  clip_learning_rate: float = 0.2
  zeroing_norm: Optional[float] = 100.0
  client_optimizer: str = 'sgd'
  client_learning_rate: float = 0.1
  server_optimizer: str = 'sgdm'
  server_learning_rate: float = 1.0
  server_momentum: float = 0.9
  batch_size: int = 8
  base_filters: int = 8
  seed: int = 0

  def clipping_params(self) -> dp_fedavg.AdaptiveClippingParams:
    return dp_fedavg.AdaptiveClippingParams(
        noise_multiplier=self.noise_multiplier,
        clients_per_round=float(self.clients_per_round),
        initial_l2_norm_clip=self.initial_l2_norm_clip,
        target_unclipped_quantile=self.target_unclipped_quantile,
        clip_learning_rate=self.clip_learning_rate,
        clipped_count_stddev=self.clipped_count_stddev)


def validate(config: ExperimentConfig, client_ids: list[str]):
  """Checks settings before any TFF work; returns the client sampler.

  Raises:
    ValueError: settings that cannot run, with what would make them run.
  """
  if config.total_rounds < 1:
    raise ValueError(f'total_rounds must be >= 1. Found {config.total_rounds}.')
  if not 0 < config.delta < 1:
    raise ValueError(f'delta must be in (0, 1). Found {config.delta}.')
  for optimizer in (config.client_optimizer, config.server_optimizer):
    if optimizer not in dp_fedavg.OPTIMIZERS:
      raise ValueError(f'optimizer must be one of {dp_fedavg.OPTIMIZERS}. Found {optimizer!r}.')
  config.clipping_params().noise_split()
  if config.target_epsilon is not None:
    budget_lib.EpsilonBudget(config.target_epsilon, config.delta, config.budget_accountant)
    if config.sampling == 'uniform' and config.budget_accountant == 'pld':
      raise ValueError("sampling 'uniform' is accounted by RDP only; "
                       'set budget_accountant to rdp.')
  return sampling_lib.build_sampler(config.sampling, client_ids,
                                    config.clients_per_round, config.seed)


def run_experiment(config: ExperimentConfig, log: Callable[[str], None] = print) -> dict:
  """Trains, accounts, evaluates and exports; returns a summary dict.

  Raises:
    FileExistsError: the run folder exists and is not empty.
    ValueError: the settings cannot run (see `validate`).
  """
  run_dir = os.path.join(config.root_output_dir, config.experiment_name)
  if os.path.isdir(run_dir) and os.listdir(run_dir):
    raise FileExistsError(f'{run_dir}: run folder exists and is not empty; '
                          'choose another experiment_name or remove it')
  manifest = conversion.load_manifest(config.data_dir)
  client_ids = sorted(manifest['clients'])
  num_clients = len(client_ids)
  sampler = validate(config, client_ids)
  clipping = config.clipping_params()
  value_noise_multiplier, clipped_count_stddev = clipping.noise_split()

  privacy_dir = os.path.join(run_dir, 'privacy')
  os.makedirs(privacy_dir, exist_ok=True)
  with open(os.path.join(run_dir, 'config.json'), 'w') as f:
    json.dump({**dataclasses.asdict(config), 'num_clients': num_clients,
               'sampling_probability': sampler.sampling_probability,
               'unit_of_privacy': manifest['client_unit']}, f, indent=2)

  tf.keras.utils.set_random_seed(config.seed)
  image_size = manifest['image_size']
  model_fn = _model_fn(image_size, config.base_filters)
  process = dp_fedavg.build_process(
      model_fn,
      aggregator=dp_fedavg.build_aggregator(clipping, zeroing_norm=config.zeroing_norm),
      client_optimizer=dp_fedavg.build_optimizer(
          config.client_optimizer, config.client_learning_rate),
      server_optimizer=dp_fedavg.build_optimizer(
          config.server_optimizer, config.server_learning_rate,
          momentum=config.server_momentum))
  client_data = client_data_lib.build_client_data(config.data_dir, manifest)

  def make_dataset(client_id: str, round_num: int) -> tf.data.Dataset:
    return (client_data.create_tf_dataset_for_client(client_id)
            .map(lambda s: (s['image'], s['mask']))
            .shuffle(1024, seed=config.seed * 100003 + round_num)
            .batch(config.batch_size))

  ledger = ledger_lib.PrivacyLedger(os.path.join(privacy_dir, 'ledger.json'))
  log(f'{num_clients} clients ({manifest["client_unit"]}), q = '
      f'{sampler.sampling_probability:.4f}, noise multiplier {config.noise_multiplier} '
      f'(value {value_noise_multiplier:.4f}, clipped-count stddev {clipped_count_stddev:.4f})')
  start = time.monotonic()
  budget = None if config.target_epsilon is None else budget_lib.EpsilonBudget(
      config.target_epsilon, config.delta, config.budget_accountant)
  state, stop_reason = training_loop.run_rounds(
      process, process.initialize(), sampler=sampler, make_dataset=make_dataset,
      total_rounds=config.total_rounds, ledger=ledger,
      metrics_path=os.path.join(run_dir, 'metrics.csv'),
      initial_clip_norm=config.initial_l2_norm_clip,
      expected_aggregator_event=clipping.expected_aggregator_event(),
      budget=budget, log=log)
  training_seconds = time.monotonic() - start

  log('computing epsilon after every round (RDP and PLD)...')
  report = privacy_report.build_report(
      ledger.round_events(), delta=config.delta, num_clients=num_clients,
      clients_per_round=config.clients_per_round, sampling=config.sampling,
      sampling_probability=sampler.sampling_probability,
      noise_multiplier=config.noise_multiplier,
      value_noise_multiplier=value_noise_multiplier,
      clipped_count_stddev=clipped_count_stddev,
      clipping={'kind': 'adaptive (Andrew et al. 2021)',
                'initial_l2_norm_clip': config.initial_l2_norm_clip,
                'target_unclipped_quantile': config.target_unclipped_quantile,
                'clip_learning_rate': config.clip_learning_rate},
      zeroing_norm=config.zeroing_norm, unit_of_privacy=manifest['client_unit'],
      ledger_sha256=ledger.sha256(),
      stop_reason=stop_reason)
  privacy_report.write_report(report, privacy_dir, target_epsilon=config.target_epsilon)
  report_path = os.path.join(privacy_dir, 'report.json')

  log('evaluating held-out subjects and exporting the SavedModel...')
  model = models.build_unet(image_size, base_filters=config.base_filters)
  process.get_model_weights(state).assign_weights_to(model)
  holdout = tfrecords.read_slices(
      client_data_lib.holdout_path(config.data_dir, manifest), image_size)
  evaluation_result = evaluation.evaluate_subjects(model, holdout)
  with open(os.path.join(run_dir, 'evaluation.json'), 'w') as f:
    json.dump(evaluation_result, f, indent=2)
  saved_model_dir = os.path.join(run_dir, 'saved_model')
  export.export_saved_model(model, saved_model_dir, privacy_report_path=report_path)
  return {'run_dir': run_dir, 'report': report_path, 'saved_model': saved_model_dir,
          'epsilon_rdp': report['epsilon_rdp'], 'epsilon_pld': report['epsilon_pld'],
          'delta': config.delta, 'holdout_mean_dice': evaluation_result['mean_dice'],
          'holdout_subjects': evaluation_result['num_subjects'],
          'rounds_completed': report['rounds_completed'], 'stop_reason': stop_reason,
          'training_seconds': training_seconds}


def _model_fn(image_size: int, base_filters: int):
  input_spec = (tf.TensorSpec([None, image_size, image_size, 1], tf.float32),
                tf.TensorSpec([None, image_size, image_size, 1], tf.float32))

  def model_fn() -> tff.learning.models.VariableModel:
    return tff.learning.models.from_keras_model(
        models.build_unet(image_size, base_filters=base_filters),
        loss=models.DiceBCELoss(), input_spec=input_spec,
        metrics=[models.PooledDice()])
  return model_fn
