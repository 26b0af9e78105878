"""Worker specs, client routes by site, and the partition of a round's clients."""

import numpy as np
import pytest
import tensorflow_federated as tff
from tensorflow_federated.python.common_libs import structure

from tff_stroke import execution
from tff_stroke import routing


def test_worker_specs_with_and_without_sites():
  assert execution.parse_workers(['h1:8000', 'h2:8001']) == [
      execution.Worker('h1:8000'), execution.Worker('h2:8001')]
  assert execution.parse_workers(['R001+R002@10.0.0.5:8000', 'R003@[::1]:8000']) == [
      execution.Worker('10.0.0.5:8000', ('R001', 'R002')),
      execution.Worker('[::1]:8000', ('R003',))]


@pytest.mark.parametrize('specs, message', [
    (['h1'], 'expected HOST:PORT'),
    (['R001@h1:port'], 'expected HOST:PORT'),
    (['h1:8000', 'h1:8000'], 'repeats'),
    (['R001@h1:8000', 'h2:8000'], 'either every worker names'),
])
def test_bad_worker_specs_are_refused(specs, message):
  with pytest.raises(ValueError, match=message):
    execution.parse_workers(specs)


def test_site_clients_and_subject_clients_go_to_the_worker_of_their_site():
  clients = {'R001': {'sites': ['R001']}, 'R002': {'sites': ['R002']},
             'sub-r003s001': {'sites': ['R003']}}
  assert routing.client_routes(clients, [('R001', 'R002'), ('R003',)]) == {
      'R001': 0, 'R002': 0, 'sub-r003s001': 1}


def test_a_client_no_single_worker_holds_is_named():
  clients = {'c0': {'sites': ['R001', 'R002']}, 'c1': {'sites': ['R004']},
             'c2': {'sites': ['R001']}}
  with pytest.raises(ValueError, match=r'client\(s\) c0 \(sites R001, R002\); c1 \(sites R004\)'):
    routing.client_routes(clients, [('R001',), ('R002',)])


def test_a_site_given_to_two_workers_is_refused():
  with pytest.raises(ValueError, match='site R001 is given to two workers'):
    routing.client_routes({'R001': {'sites': ['R001']}}, [('R001',), ('R001', 'R002')])


def test_round_arguments_are_cut_per_worker_and_the_server_value_replicated():
  arg_type = tff.StructType([
      ('state', tff.FederatedType(np.float32, tff.SERVER)),
      ('keys', tff.FederatedType(np.str_, tff.CLIENTS))])
  arg = structure.Struct([('state', 1.5), ('keys', ['a|1', 'b|1', 'c|1', 'd|1'])])
  worker = {'a': 1, 'b': 0, 'c': 1, 'd': 1}
  keys = routing.client_values(arg, arg_type)
  groups = routing.group_by_worker(keys, lambda k: worker[k[0]], 3)
  assert groups == [[1], [0, 2, 3], []]
  selected = routing.select_clients(arg, arg_type, groups[1])
  assert selected.state == 1.5
  assert selected.keys == ['a|1', 'c|1', 'd|1']
