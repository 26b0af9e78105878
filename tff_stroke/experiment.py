"""One federated experiment from a prepared folder to report and SavedModel.

Writes into ROOT/NAME: config.json, preprocessing.json, training_data.json,
metrics.csv, tensorboard/, checkpoints/, privacy/ledger.json,
privacy/report.{json,md}, evaluation.json, saved_model/, summary.md and, last,
summary.json.
"""

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Optional

import tensorflow as tf
import tensorflow_federated as tff

from data_pipelines import client_data as client_data_lib
from data_pipelines import conversion
from data_pipelines import json_files
from tff_stroke import aggregation as aggregation_lib
from tff_stroke import budget as budget_lib
from tff_stroke import checkpoints as checkpoints_lib
from tff_stroke import dp_fedavg
from tff_stroke import execution
from tff_stroke import ledger as ledger_lib
from tff_stroke import model_card
from tff_stroke import models
from tff_stroke import privacy_report
from tff_stroke import routing
from tff_stroke import run_export
from tff_stroke import run_folder
from tff_stroke import sampling as sampling_lib
from tff_stroke import shard_check as shard_check_lib
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
  aggregator: str = 'dp_adaptive'
  sampling: str = 'poisson'
  target_epsilon: Optional[float] = None
  budget_accountant: str = 'pld'
  clipped_count_stddev: Optional[float] = None
  l2_norm_clip: float = 0.1
  target_unclipped_quantile: float = 0.5
  clip_learning_rate: float = 0.2
  zeroing_norm: Optional[float] = 100.0
  client_optimizer: str = 'sgd'
  client_learning_rate: float = 0.1
  server_optimizer: str = 'sgdm'
  server_learning_rate: float = 1.0
  server_momentum: float = 0.9
  batch_size: int = 8
  client_epochs: int = 1
  base_filters: int = 8
  unet_depth: int = 3
  seed: int = 0
  checkpoint_every: int = 1
  checkpoints_to_keep: int = 0
  eval_every: int = 0
  loop: str = 'dataset_iterator'

  def aggregation(self) -> aggregation_lib.Aggregation:
    return aggregation_lib.Aggregation(
        kind=self.aggregator, noise_multiplier=self.noise_multiplier,
        clients_per_round=float(self.clients_per_round), l2_norm_clip=self.l2_norm_clip,
        target_unclipped_quantile=self.target_unclipped_quantile,
        clip_learning_rate=self.clip_learning_rate,
        clipped_count_stddev=self.clipped_count_stddev, zeroing_norm=self.zeroing_norm,
        noise_seed=self.seed)


def validate(config: ExperimentConfig, client_ids: list[str]):
  """Checks settings before any TFF work; returns the client sampler.

  Raises:
    ValueError: settings that cannot run, with what would make them run.
  """
  if config.total_rounds < 1:
    raise ValueError(f'total_rounds must be >= 1. Found {config.total_rounds}.')
  if config.checkpoint_every < 1:
    raise ValueError(f'checkpoint_every must be >= 1. Found {config.checkpoint_every}.')
  if config.client_epochs < 1:
    raise ValueError(f'client_epochs must be >= 1. Found {config.client_epochs}.')
  if config.eval_every < 0:
    raise ValueError(f'eval_every must be >= 0 (0: at the end only). Found {config.eval_every}.')
  if not 0 < config.delta < 1:
    raise ValueError(f'delta must be in (0, 1). Found {config.delta}.')
  if config.loop not in dp_fedavg.LOOPS:
    raise ValueError(f'loop must be one of {tuple(dp_fedavg.LOOPS)}. Found {config.loop!r}.')
  for optimizer in (config.client_optimizer, config.server_optimizer):
    if optimizer not in dp_fedavg.OPTIMIZERS:
      raise ValueError(f'optimizer must be one of {dp_fedavg.OPTIMIZERS}. Found {optimizer!r}.')
  config.aggregation().validate()
  _validate_pairing(config)
  if config.target_epsilon is not None:
    if config.aggregator == 'none':
      raise ValueError("target_epsilon needs a DP aggregator; aggregator 'none' has no "
                       'finite epsilon.')
    budget_lib.EpsilonBudget(config.target_epsilon, config.delta, config.budget_accountant)
    if config.sampling in ('uniform', 'shuffled') and config.budget_accountant == 'pld':
      raise ValueError(f'sampling {config.sampling!r} is accounted by RDP only; '
                       'set budget_accountant to rdp.')
  sampler = sampling_lib.build_sampler(config.sampling, client_ids,
                                       config.clients_per_round, config.seed)
  if config.sampling == 'shuffled' and config.total_rounds > sampler.max_rounds:
    raise ValueError(
        f'dp_ftrl accounts one pass over the clients: {len(client_ids)} clients at '
        f'{int(config.clients_per_round)} per round allow {sampler.max_rounds} rounds, '
        f'not {config.total_rounds}. Lower total_rounds or clients_per_round.')
  return sampler


def validate_data(config: ExperimentConfig):
  """`validate` against the clients of the prepared folder; returns the sampler.

  Raises:
    FileNotFoundError: the folder is not a finished conversion.
    ValueError: the settings cannot run on it.
  """
  manifest = conversion.load_manifest(config.data_dir)
  image_size = manifest['image_size']
  if image_size % 2**config.unet_depth:
    raise ValueError(f'unet_depth {config.unet_depth} needs an image size divisible by '
                     f'{2**config.unet_depth}; the prepared slices are {image_size}.')
  return validate(config, sorted(manifest['clients']))


def _validate_pairing(config: ExperimentConfig) -> None:
  """DP-FTRL goes with the shuffled single pass, and only with it."""
  if config.aggregator == 'dp_ftrl':
    if config.sampling != 'shuffled':
      raise ValueError("aggregator 'dp_ftrl' needs sampling 'shuffled' (no sampling: each "
                       'client in at most one round of the tree); found sampling '
                       f'{config.sampling!r}.')
    if config.server_optimizer not in ('sgd', 'sgdm'):
      raise ValueError("aggregator 'dp_ftrl' applies the tree's residuals with server SGD; "
                       f"set server_optimizer to 'sgd' or 'sgdm' (found "
                       f'{config.server_optimizer!r}).')
  elif config.sampling == 'shuffled' and config.aggregator != 'none':
    raise ValueError(f"sampling 'shuffled' is accounted only for aggregator 'dp_ftrl' "
                     f'(tree aggregation); found {config.aggregator!r}.')


def config_record(config: ExperimentConfig, manifest: dict, sampler) -> dict:
  """config.json: every setting plus what the data and sampler make of them."""
  return {**dataclasses.asdict(config), 'num_clients': len(manifest['clients']),
          'sampling_probability': sampler.sampling_probability,
          'unit_of_privacy': manifest['client_unit']}


def load_config(run_dir: str) -> ExperimentConfig:
  """The ExperimentConfig recorded in a run folder's config.json."""
  with open(os.path.join(run_dir, run_folder.CONFIG_NAME)) as f:
    record = json.load(f)
  names = {field.name for field in dataclasses.fields(ExperimentConfig)}
  return ExperimentConfig(**{k: v for k, v in record.items() if k in names})


def build_learning_process(config: ExperimentConfig, image_size: int, channels: int = 1):
  """The learning process of `config`: FedAvg with the configured aggregator."""
  model_fn = _model_fn(image_size, channels, config.base_filters, config.unet_depth)
  return dp_fedavg.build_process(
      model_fn, aggregator=config.aggregation().build_factory(model_fn),
      client_optimizer=dp_fedavg.build_optimizer(
          config.client_optimizer, config.client_learning_rate),
      server_optimizer=dp_fedavg.build_optimizer(
          config.server_optimizer, config.server_learning_rate,
          momentum=config.server_momentum),
      loop=config.loop)


def build_keras_model(config: ExperimentConfig, image_size: int,
                      channels: int = 1) -> tf.keras.Model:
  return models.build_unet(image_size, channels=channels, base_filters=config.base_filters,
                           depth=config.unet_depth)


# A round's client key: "CLIENT_ID|ROUND"; the dataset is built from it
# inside the TFF computation, where the client's data is.
KEY_SEPARATOR = '|'


def client_key(client_id: str, round_num: int) -> str:
  return f'{client_id}{KEY_SEPARATOR}{round_num}'


def with_client_datasets(process: tff.learning.templates.LearningProcess,
                         client_data: tff.simulation.datasets.FilePerUserClientData,
                         config: ExperimentConfig) -> tff.learning.templates.LearningProcess:
  """The process taking client keys (`client_key`) instead of datasets.

  Each client's dataset is built where the client runs, from its TFRecord
  file: `client_epochs` passes of (image, mask) batches, shuffled by seed and
  round (afresh each pass). Only the keys
  travel from the coordinator; no dataset graph is serialised per round.
  """
  if any(KEY_SEPARATOR in c for c in client_data.client_ids):
    raise ValueError(f'client ids must not contain {KEY_SEPARATOR!r}')

  @tff.tensorflow.computation(tf.string)
  def client_dataset(key):
    parts = tf.strings.split(key, KEY_SEPARATOR)
    round_num = tf.strings.to_number(parts[1], tf.int64)
    return (client_data.serializable_dataset_fn(parts[0])
            .map(lambda s: (s['image'], s['mask']))
            .shuffle(1024, seed=config.seed * 100003 + round_num)
            .repeat(config.client_epochs)
            .batch(config.batch_size))

  return tff.simulation.compose_dataset_computation_with_learning_process(
      client_dataset, process)


def execution_context(data_dir: str, workers: Sequence[execution.Worker], *,
                      connect_timeout_seconds: float = 10.0, retry_seconds: float = 60.0):
  """TFF's local C++ context, or the remote `workers`' context.

  Workers that name their sites get exactly the clients of those sites;
  workers that name none share each round's clients equally (every worker
  must then hold every shard).

  Raises:
    ValueError: no single worker holds some client's sites.
  """
  if not workers:
    return execution.local_cpp_context()
  worker_of = None
  if workers[0].sites:
    routes = routing.client_routes(conversion.load_manifest(data_dir)['clients'],
                                   [w.sites for w in workers])
    worker_of = lambda key: routes[key.split(KEY_SEPARATOR)[0]]
  return execution.remote_context(workers, worker_of=worker_of,
                                  connect_timeout_seconds=connect_timeout_seconds,
                                  retry_seconds=retry_seconds)


def run_experiment(config: ExperimentConfig, *, resume: bool = True,
                   shards_on_workers: bool = False,
                   log: Callable[[str], None] = print) -> dict:
  """Trains, accounts, evaluates and exports; returns the run's summary.

  A folder holding this run's checkpoints is resumed after its last one; a
  finished run is not run again (its summary is returned). A run stopped by
  an error (a lost worker, say) first checkpoints its last finished round.
  `shards_on_workers`: client shards are read by remote workers, from their
  own data folders; here only the manifest and held-out data are needed.

  Raises:
    FileExistsError: the run folder holds another run, or resume is off and
      it is not empty.
    ValueError: the settings cannot run (see `validate`).
  """
  run_dir = os.path.join(config.root_output_dir, config.experiment_name)
  manifest = conversion.load_manifest(config.data_dir)
  client_ids = sorted(manifest['clients'])
  sampler = validate(config, client_ids)
  status = run_folder.open_run_folder(
      run_dir, config_record(config, manifest, sampler), resume=resume)
  if status == run_folder.FINISHED:
    log(f'{run_dir}: already finished; nothing to run')
    return run_folder.read_summary(run_dir)
  aggregation = config.aggregation()
  value_noise_multiplier, clipped_count_stddev = aggregation.noise_split()
  json_files.write_json_atomically(
      manifest['preprocessing'], os.path.join(run_dir, run_export.PREPROCESSING_NAME), indent=2)
  json_files.write_json_atomically(
      model_card.training_data_summary(manifest),
      os.path.join(run_dir, run_export.TRAINING_DATA_NAME), indent=2)

  tf.keras.utils.set_random_seed(config.seed)
  image_size, channels = manifest['image_size'], client_data_lib.num_channels(manifest)
  process = build_learning_process(config, image_size, channels)
  training_process = with_client_datasets(
      process, client_data_lib.build_client_data(
          config.data_dir, manifest, on_workers=shards_on_workers), config)
  shard_check = shard_check_lib.ShardCheck(
      client_data_lib.client_files(config.data_dir, manifest, on_workers=shards_on_workers),
      {c: entry['num_examples'] for c, entry in manifest['clients'].items()},
      manifest['compression'], KEY_SEPARATOR)

  state = process.initialize()
  checkpoints = checkpoints_lib.RunCheckpoints(
      os.path.join(run_dir, run_export.CHECKPOINTS_NAME), config.checkpoints_to_keep)
  latest = checkpoints.latest_round()
  checkpoint = None if latest is None else checkpoints.load(latest, state)
  ledger = ledger_lib.PrivacyLedger.resume(
      os.path.join(run_dir, 'privacy', 'ledger.json'),
      checkpoint.ledger_entries if checkpoint else [])
  if checkpoint:
    state = checkpoint.server_state
    sampler.restore_rng_state(checkpoint.sampler_rng_state)
    log(f'resuming {run_dir} after round {checkpoint.round_num}')
  if ledger.discarded and config.aggregator == 'dp_ftrl':
    raise ValueError(
        f'{run_dir}: {len(ledger.discarded)} DP-FTRL round(s) ran after the last '
        'checkpoint. Repeating them would re-release tree nodes with the same noise, '
        'which no accountant here covers; start a new run (--noresume, new folder).')
  if ledger.discarded:
    log(f'{len(ledger.discarded)} round executions after the last checkpoint are '
        'repeated; they still count towards epsilon')

  def save_checkpoint(round_num, state, rows):
    checkpoints.save(checkpoints_lib.Checkpoint(
        round_num=round_num, server_state=state, ledger_entries=ledger.entries[:round_num],
        sampler_rng_state=sampler.rng_state(), metrics_rows=rows))

  last_rows = list(checkpoint.metrics_rows) if checkpoint else []
  tensorboard = tf.summary.create_file_writer(os.path.join(run_dir, 'tensorboard'))
  eval_model = build_keras_model(config, image_size, channels)

  def evaluate(round_num, state):
    if not config.eval_every or round_num % config.eval_every:
      return None
    process.get_model_weights(state).assign_weights_to(eval_model)
    overall = run_export.evaluate_holdout(
        eval_model, config.data_dir, manifest)['held_out_subjects']['overall']
    return {'holdout_dice': overall['dice'], 'holdout_lesion_f1': overall['lesion_f1']}

  last_finished = {}

  def after_round(round_num, state, rows):
    last_rows[:] = rows
    last_finished.update(round_num=round_num, state=state)
    with tensorboard.as_default():
      for key, value in rows[-1].items():
        if key != 'round' and value is not None:
          tf.summary.scalar(key, value, step=round_num)
    tensorboard.flush()
    if round_num % config.checkpoint_every == 0 or round_num == config.total_rounds:
      save_checkpoint(round_num, state, rows)

  log(f'{config.aggregator}: {len(client_ids)} clients ({manifest["client_unit"]}), '
      f'sampling {config.sampling}, q = {sampler.sampling_probability:.4f}, noise '
      f'multiplier {config.noise_multiplier}'
      + (f' (value {value_noise_multiplier:.4f}, clipped-count stddev '
         f'{clipped_count_stddev:.4f})' if clipped_count_stddev is not None else ''))
  start = time.monotonic()
  budget = None if config.target_epsilon is None else budget_lib.EpsilonBudget(
      config.target_epsilon, config.delta, config.budget_accountant)
  try:
    state, stop_reason = training_loop.run_rounds(
        training_process, state, sampler=sampler, client_input=client_key,
        total_rounds=config.total_rounds, ledger=ledger,
        metrics_path=os.path.join(run_dir, 'metrics.csv'), aggregation=aggregation,
        delta=config.delta, budget=budget,
        previous_rows=checkpoint.metrics_rows if checkpoint else (),
        evaluate=evaluate, after_round=after_round, log=log,
        check_clients=lambda clients, round_num: shard_check.failures(
            [client_key(c, round_num) for c in clients]))
  except Exception:
    finished = last_finished.get('round_num')
    if finished is not None:
      if finished != checkpoints.latest_round():
        save_checkpoint(finished, last_finished['state'], last_rows)
      log(f'stopped after round {finished}: its checkpoint and the ledger are saved')
    raise
  training_seconds = time.monotonic() - start
  rounds_completed = len(ledger.entries)
  if rounds_completed and checkpoints.latest_round() != rounds_completed:
    save_checkpoint(rounds_completed, state, last_rows)

  log('computing epsilon after every round (RDP and PLD)...')
  report = privacy_report.build_report(
      ledger.round_events(), delta=config.delta, num_clients=len(client_ids),
      clients_per_round=config.clients_per_round, sampling=config.sampling,
      sampling_probability=sampler.sampling_probability,
      noise_multiplier=config.noise_multiplier,
      value_noise_multiplier=value_noise_multiplier,
      clipped_count_stddev=clipped_count_stddev, mechanism=aggregation.report_record(),
      unit_of_privacy=manifest['client_unit'],
      ledger_sha256=ledger.sha256(), stop_reason=stop_reason,
      rounds_discarded=len(ledger.discarded), clients_left_out=ledger.clients_left_out())
  privacy_report.write_report(report, os.path.join(run_dir, 'privacy'),
                              target_epsilon=config.target_epsilon)

  log('evaluating held-out subjects and exporting the SavedModel...')
  model = eval_model
  process.get_model_weights(state).assign_weights_to(model)
  evaluation_result = run_export.evaluate_holdout(model, config.data_dir, manifest)
  json_files.write_json_atomically(
      evaluation_result, os.path.join(run_dir, run_export.EVALUATION_NAME), indent=2)
  saved_model_dir = os.path.join(run_dir, 'saved_model')
  run_export.export_run_model(
      run_dir, model, evaluation_result, saved_model_dir,
      provenance=f'{ALGORITHM_NAMES[config.aggregator]}, global weights after round '
                 f'{rounds_completed} of {rounds_completed}')
  summary = {
      'run_dir': run_dir, 'report': os.path.join(run_dir, 'privacy', 'report.json'),
      'saved_model': saved_model_dir, 'epsilon_rdp': report['epsilon_rdp'],
      'epsilon_pld': report['epsilon_pld'], 'delta': config.delta,
      **run_export.evaluation_summary(evaluation_result),
      'rounds_completed': rounds_completed, 'stop_reason': stop_reason,
      'training_seconds': training_seconds}
  run_export.write_run_summary_markdown(run_dir, [
      f'{ALGORITHM_NAMES[config.aggregator]}: {rounds_completed} rounds ({stop_reason}), {training_seconds:.0f} s '
      'of training in the last session',
      f'Epsilon at delta {config.delta:g}: PLD {_epsilon_text(report["epsilon_pld"])}, '
      f'RDP {_epsilon_text(report["epsilon_rdp"])} (privacy/report.md)',
      'saved_model/: signatures serving_default and segment_volume; assets '
      'privacy_report.json, preprocessing.json, model_card.md',
  ], evaluation_result)
  run_folder.write_summary(run_dir, summary)
  return summary


ALGORITHM_NAMES = {'none': 'FedAvg (not private)', 'dp_fixed': 'DP-FedAvg (fixed clip)',
                    'dp_adaptive': 'DP-FedAvg (adaptive clip)', 'dp_ftrl': 'DP-FTRL'}


def _epsilon_text(value: Optional[float]) -> str:
  return 'no finite bound' if value is None else f'{value:.4g}'


def _model_fn(image_size: int, channels: int, base_filters: int, depth: int):
  input_spec = (tf.TensorSpec([None, image_size, image_size, channels], tf.float32),
                tf.TensorSpec([None, image_size, image_size, 1], tf.float32))

  def model_fn() -> tff.learning.models.VariableModel:
    return tff.learning.models.from_keras_model(
        models.build_unet(image_size, channels=channels, base_filters=base_filters,
                          depth=depth),
        loss=models.DiceBCELoss(), input_spec=input_spec,
        metrics=[models.PooledDice()])
  return model_fn


def load_checkpoint_model(run_dir: str, round_num: Optional[int] = None
                          ) -> tuple[tf.keras.Model, int]:
  """The Keras model with the global weights of a checkpoint; (model, round).

  `round_num` None takes the last checkpoint. Needs a TFF execution context
  (the process's initial state gives the checkpoint's structure).

  Raises:
    FileNotFoundError: the run has no checkpoint of that round.
  """
  config = load_config(run_dir)
  checkpoints = checkpoints_lib.RunCheckpoints(
      os.path.join(run_dir, run_export.CHECKPOINTS_NAME))
  available = checkpoints.rounds()
  round_num = max(available, default=None) if round_num is None else round_num
  if round_num not in available:
    raise FileNotFoundError(f'{run_dir}: no checkpoint of round {round_num}; '
                            f'checkpoints: {available or "none"}')
  with open(os.path.join(run_dir, run_export.PREPROCESSING_NAME)) as f:
    preprocessing = json.load(f)
  image_size, channels = preprocessing['image_size'], len(preprocessing['channels'])
  process = build_learning_process(config, image_size, channels)
  checkpoint = checkpoints.load(round_num, process.initialize())
  model = build_keras_model(config, image_size, channels)
  process.get_model_weights(checkpoint.server_state).assign_weights_to(model)
  return model, round_num
