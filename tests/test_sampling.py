"""The sampler is Poisson, as the accountant assumes."""

import json

import dp_accounting
import numpy as np
import pytest

from tff_stroke import sampling


def test_poisson_counts_are_binomial():
  n, q, rounds = 50, 0.2, 2000
  sampler = sampling.PoissonSampler([f'c{i}' for i in range(n)], q, seed=3)
  counts = np.array([len(sampler.sample()) for _ in range(rounds)])
  # Binomial(50, 0.2): mean 10, variance 8. With 2000 rounds the standard
  # error of the mean is 0.063 and of the variance about 0.27 (seeded).
  assert abs(counts.mean() - n * q) < 0.3
  assert abs(counts.var() - n * q * (1 - q)) < 1.2
  # Not fixed-size: a fixed-size sampler would have zero variance.
  assert counts.min() < n * q < counts.max()


def test_each_client_joins_with_probability_q():
  ids = [f'c{i}' for i in range(10)]
  sampler = sampling.PoissonSampler(ids, 0.3, seed=1)
  joins = {c: 0 for c in ids}
  for _ in range(3000):
    for c in sampler.sample():
      joins[c] += 1
  # Each count ~ Binomial(3000, 0.3): sd 25; 0.3*3000 +- 100 is 4 sd.
  assert all(abs(v - 900) < 100 for v in joins.values())


def test_same_seed_same_rounds():
  ids = [f'c{i}' for i in range(20)]
  a = sampling.PoissonSampler(ids, 0.25, seed=9)
  b = sampling.PoissonSampler(ids, 0.25, seed=9)
  assert [a.sample() for _ in range(5)] == [b.sample() for _ in range(5)]


def test_all_clients_sampler():
  sampler = sampling.AllClientsSampler(['b', 'a'])
  assert sampler.sample() == ['a', 'b']
  assert sampler.sampling_probability == 1.0


@pytest.mark.parametrize('q', [0.0, -0.1, 1.5])
def test_bad_probability(q):
  with pytest.raises(ValueError, match='sampling_probability'):
    sampling.PoissonSampler(['a'], q, seed=0)


def test_uniform_sampler_draws_exactly_m_distinct_clients():
  ids = [f'c{i}' for i in range(12)]
  sampler = sampling.UniformSampler(ids, 4, seed=2)
  rounds = [sampler.sample() for _ in range(500)]
  assert {len(r) for r in rounds} == {4}
  assert all(len(set(r)) == 4 for r in rounds)
  # Each client is in a round with probability 4/12: 500/3 +- 4 sd (sd ~ 10.5).
  counts = {c: sum(c in r for r in rounds) for c in ids}
  assert all(abs(v - 500 / 3) < 43 for v in counts.values())


def test_each_sampler_makes_the_event_of_its_sampling():
  gaussian = dp_accounting.GaussianDpEvent(1.5)
  ids = [f'c{i}' for i in range(10)]
  assert sampling.build_sampler('poisson', ids, 2.0, seed=0).round_event(gaussian) == \
      dp_accounting.PoissonSampledDpEvent(0.2, gaussian)
  # Replace-one adjacency: one client's change moves the clipped sum by 2 clips.
  assert sampling.build_sampler('uniform', ids, 2.0, seed=0).round_event(gaussian) == \
      dp_accounting.SampledWithoutReplacementDpEvent(10, 2, dp_accounting.GaussianDpEvent(0.75))
  assert sampling.build_sampler('all', ids, 10.0, seed=0).round_event(gaussian) == gaussian


@pytest.mark.parametrize('mode,m,message', [
    ('poisson', 11.0, 'clients_per_round must be in'),
    ('uniform', 2.5, 'whole clients_per_round'),
    ('all', 5.0, "sampling 'all'"),
    ('stratified', 2.0, 'sampling must be one of'),
])
def test_build_sampler_refuses(mode, m, message):
  with pytest.raises(ValueError, match=message):
    sampling.build_sampler(mode, [f'c{i}' for i in range(10)], m, seed=0)


@pytest.mark.parametrize('mode,m', [('poisson', 3.0), ('uniform', 3.0), ('all', 10.0)])
def test_restored_rng_state_repeats_the_draws(mode, m):
  ids = [f'c{i}' for i in range(10)]
  sampler = sampling.build_sampler(mode, ids, m, seed=5)
  sampler.sample()
  state = json.loads(json.dumps(sampler.rng_state()))
  expected = [sampler.sample() for _ in range(3)]
  resumed = sampling.build_sampler(mode, ids, m, seed=99)
  resumed.restore_rng_state(state)
  assert [resumed.sample() for _ in range(3)] == expected


def test_shuffled_sampler_is_one_pass_and_resumes_where_it_stopped():
  ids = [f'c{i}' for i in range(10)]
  sampler = sampling.build_sampler('shuffled', ids, 3, seed=4)
  assert sampler.max_rounds == 3
  first = sampler.sample()
  state = json.loads(json.dumps(sampler.rng_state()))
  rest = [sampler.sample(), sampler.sample()]
  assert len({c for r in [first, *rest] for c in r}) == 9
  with pytest.raises(ValueError, match='would repeat a client'):
    sampler.sample()
  resumed = sampling.build_sampler('shuffled', ids, 3, seed=4)
  resumed.restore_rng_state(state)
  assert [resumed.sample(), resumed.sample()] == rest
  assert sampler.round_event(dp_accounting.GaussianDpEvent(2.0)) == \
      dp_accounting.SingleEpochTreeAggregationDpEvent(2.0, 1)
