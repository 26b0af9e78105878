"""Settings that cannot run are refused before any TFF work, with the fix named."""

import os

import dp_accounting
import pytest

from tff_stroke import aggregation
from tff_stroke import dp_fedavg
from tff_stroke import experiment
from tff_stroke import privacy_report


CLIENTS = [f'c{i}' for i in range(10)]


def _config(**overrides):
  settings = dict(data_dir='d', root_output_dir='r', experiment_name='e',
                  total_rounds=5, clients_per_round=4.0, noise_multiplier=0.1,
                  delta=1e-5)
  settings.update(overrides)
  return experiment.ExperimentConfig(**settings)


def test_noise_too_large_for_clipped_count_stddev_names_the_fix():
  # Default stddev 0.05 * 4 = 0.2; TFF requires z < 2 * 0.2.
  with pytest.raises(ValueError, match=r'clipped_count_stddev above 0\.25.*more than 5 clients'):
    experiment.validate(_config(noise_multiplier=0.5), CLIENTS)
  experiment.validate(_config(noise_multiplier=0.5, clipped_count_stddev=0.3), CLIENTS)


def test_noise_split_matches_tff():
  params = dp_fedavg.AdaptiveClippingParams(noise_multiplier=1.0, clients_per_round=100.0)
  value_z, stddev = params.noise_split()
  assert stddev == 5.0
  assert value_z == pytest.approx((1.0 - 1 / 100) ** -0.5)


@pytest.mark.parametrize('overrides,message', [
    ({'clients_per_round': 11.0}, 'clients_per_round'),
    ({'delta': 0.0}, 'delta'),
    ({'total_rounds': 0}, 'total_rounds'),
    ({'sampling': 'all'}, "sampling 'all'"),
    ({'sampling': 'uniform', 'clients_per_round': 2.5}, 'whole clients_per_round'),
    ({'sampling': 'fixed'}, 'sampling must be one of'),
    ({'server_optimizer': 'rmsprop'}, 'optimizer must be one of'),
    ({'noise_multiplier': -1.0}, 'non-negative'),
    ({'aggregator': 'dp_median'}, 'aggregator must be one of'),
    ({'aggregator': 'none'}, "aggregator 'none' adds no noise; set noise_multiplier to 0"),
    ({'aggregator': 'none', 'noise_multiplier': 0.0, 'target_epsilon': 5.0},
     'target_epsilon needs a DP aggregator'),
    ({'aggregator': 'dp_fixed', 'l2_norm_clip': 0.0}, 'l2_norm_clip must be positive'),
    ({'aggregator': 'dp_ftrl'}, "'dp_ftrl' needs sampling 'shuffled'"),
    ({'aggregator': 'dp_ftrl', 'sampling': 'shuffled', 'server_optimizer': 'adam'},
     "set server_optimizer to 'sgd' or 'sgdm'"),
    ({'aggregator': 'dp_ftrl', 'sampling': 'shuffled', 'total_rounds': 3},
     '10 clients at 4 per round allow 2 rounds, not 3'),
    ({'aggregator': 'dp_adaptive', 'sampling': 'shuffled'},
     "'shuffled' is accounted only for aggregator 'dp_ftrl'"),
    ({'eval_every': -1}, 'eval_every must be >= 0'),
    ({'client_epochs': 0}, 'client_epochs must be >= 1'),
])
def test_bad_settings(overrides, message):
  with pytest.raises(ValueError, match=message):
    experiment.validate(_config(**overrides), CLIENTS)


def test_dp_ftrl_within_one_pass_is_accepted():
  sampler = experiment.validate(_config(aggregator='dp_ftrl', sampling='shuffled',
                                        total_rounds=2, noise_multiplier=2.0), CLIENTS)
  assert sampler.max_rounds == 2
  # dp_adaptive would refuse z = 2 with 4 clients per round; dp_fixed does not.
  experiment.validate(_config(aggregator='dp_fixed', noise_multiplier=2.0), CLIENTS)


def test_report_warns_when_delta_is_not_below_one_over_n():
  events = [dp_accounting.PoissonSampledDpEvent(0.5, dp_accounting.GaussianDpEvent(1.0))]
  report = privacy_report.build_report(
      events, delta=0.25, num_clients=4, clients_per_round=2.0, sampling='poisson',
      sampling_probability=0.5, noise_multiplier=1.0, value_noise_multiplier=1.2,
      clipped_count_stddev=1.0,
      mechanism=aggregation.Aggregation('dp_adaptive', 1.0, 2.0).report_record(),
      unit_of_privacy='site', ledger_sha256=None)
  assert any('1/num_clients' in w for w in report['warnings'])
  assert report['rounds_completed'] == 1
  assert report['unit_of_privacy_meaning'] == 'adding or removing all data of one site (hospital)'


def test_a_long_report_gives_pld_every_few_rounds_and_rdp_every_round(tmp_path):
  events = [dp_accounting.PoissonSampledDpEvent(0.05, dp_accounting.GaussianDpEvent(1.5))] * 150
  report = privacy_report.build_report(
      events, delta=1e-5, num_clients=40, clients_per_round=2.0, sampling='poisson',
      sampling_probability=0.05, noise_multiplier=1.5, value_noise_multiplier=1.6,
      clipped_count_stddev=2.0,
      mechanism=aggregation.Aggregation('dp_adaptive', 1.5, 2.0).report_record(),
      unit_of_privacy='site', ledger_sha256=None, clients_left_out=3)
  assert report['per_round_pld_every'] == 2
  assert len(report['per_round']) == 150
  assert all(p['epsilon_rdp'] is not None for p in report['per_round'])
  with_pld = [p['round'] for p in report['per_round'] if 'epsilon_pld' in p]
  assert with_pld == list(range(2, 151, 2))
  assert report['per_round'][-1]['epsilon_pld'] == report['epsilon_pld']
  assert report['clients_left_out'] == 3
  markdown = privacy_report.render_markdown(report)
  table = [line for line in markdown.splitlines() if line.startswith('| ') and
           line[2].isdigit()]
  assert [int(line.split(' | ')[0][2:]) for line in table] == list(range(14, 151, 14)) + [150]
  assert 'Clients left out at round time: 3.' in markdown
  privacy_report.write_report(report, str(tmp_path))
  assert os.path.getsize(tmp_path / 'epsilon.png') > 0
