"""Rounds spread over TFF workers, each client sent to the worker holding its data.

TFF's mergeable execution context cuts a round's client list into equal,
consecutive chunks, one per worker, which suits workers that all see every
shard. When each worker holds only some sites' shards, `RoutedMergeableContext`
instead sends each client to the worker `worker_of(client value)` names;
workers with no client in a round are left out of it. Merging and the server
part of the round (noise included, added once) are TFF's own: the subround
invocation is TFF 0.87's `_invoke_mergeable_comp_form` (the pinned, last
release), given the routed arguments instead of equal chunks.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

from tensorflow_federated.python.common_libs import structure
from tensorflow_federated.python.core.impl.context_stack import context_base
from tensorflow_federated.python.core.impl.execution_contexts import (
    mergeable_comp_execution_context as mergeable)
from tensorflow_federated.python.core.impl.types import computation_types
from tensorflow_federated.python.core.impl.types import placements
from tensorflow_federated.python.core.impl.types import type_conversions


def _is_client_list(type_spec: computation_types.Type) -> bool:
  return (isinstance(type_spec, computation_types.FederatedType)
          and type_spec.placement is placements.CLIENTS and not type_spec.all_equal)


def client_values(value: Any, type_spec: computation_types.Type) -> Optional[list]:
  """The first CLIENTS-placed (not all-equal) list in `value`, or None."""
  if _is_client_list(type_spec):
    return list(value)
  if isinstance(type_spec, computation_types.StructType):
    for (_, element), (_, element_type) in zip(
        structure.iter_elements(structure.from_container(value)),
        structure.iter_elements(type_spec)):
      found = client_values(element, element_type)
      if found is not None:
        return found
  return None


def select_clients(value: Any, type_spec: computation_types.Type,
                   indices: Sequence[int]) -> Any:
  """`value` with every CLIENTS-placed list cut to `indices`; the rest as is."""
  if _is_client_list(type_spec):
    return [value[i] for i in indices]
  if isinstance(type_spec, computation_types.StructType):
    return structure.Struct([
        (name, select_clients(element, element_type, indices))
        for (name, element), (_, element_type) in zip(
            structure.iter_elements(structure.from_container(value)),
            structure.iter_elements(type_spec))])
  return value


def group_by_worker(values: Sequence[Any], worker_of: Callable[[Any], int],
                    num_workers: int) -> list[list[int]]:
  """Indices of `values` per worker, in their order."""
  groups = [[] for _ in range(num_workers)]
  for i, v in enumerate(values):
    groups[worker_of(v)].append(i)
  return groups


class _Partitioned:
  """What TFF's subround invocation expects of an argument: `.value()`."""

  def __init__(self, arguments: list):
    self._arguments = arguments

  def value(self) -> list:
    return self._arguments


class RoutedMergeableContext(mergeable.MergeableCompExecutionContext):
  """A mergeable context that routes each client to its worker.

  `worker_of` maps one element of the computation's CLIENTS-placed argument
  (here a client key) to the index of the context that runs it.
  """

  def __init__(self, async_contexts: Sequence[context_base.AsyncContext],
               compiler_fn, worker_of: Callable[[Any], int]):
    super().__init__(async_contexts, compiler_fn=compiler_fn)
    self._worker_of = worker_of

  def invoke(self, comp, arg=None):
    comp = self._compiler_pipeline.compile(comp)
    contexts = list(self._async_execution_contexts)
    if arg is None:
      partitioned = None
    else:
      parameter_type = comp.up_to_merge.type_signature.parameter
      clients = client_values(arg, parameter_type)
      groups = ([] if clients is None else
                group_by_worker(clients, self._worker_of, len(contexts)))
      chosen = [(c, g) for c, g in zip(contexts, groups) if g]
      if chosen:
        contexts = [c for c, _ in chosen]
        partitioned = _Partitioned(
            [select_clients(arg, parameter_type, g) for _, g in chosen])
      else:  # no clients in this round, or no client-placed argument at all
        contexts = contexts[:1]
        partitioned = _Partitioned([arg])
    result = self._async_runner.run_coro_and_return_result(
        mergeable._invoke_mergeable_comp_form(comp, partitioned, contexts))  # pylint: disable=protected-access
    return type_conversions.type_to_py_container(
        result, comp.after_merge.type_signature.result)


def client_routes(clients: Mapping[str, dict],
                  worker_sites: Sequence[Sequence[str]]) -> dict[str, int]:
  """Client id -> index of the worker holding every site of the client.

  `clients` are the manifest's client entries (each lists its 'sites').

  Raises:
    ValueError: a site is given to two workers, or a client's sites are not
      all held by one worker (each such client is named).
  """
  site_worker = {}
  for index, sites in enumerate(worker_sites):
    for site in sites:
      if site in site_worker:
        raise ValueError(f'site {site} is given to two workers ({site_worker[site]} and {index})')
      site_worker[site] = index
  routes, unplaced = {}, []
  for client_id, entry in sorted(clients.items()):
    holders = {site_worker.get(site) for site in entry['sites']}
    if len(holders) != 1 or None in holders:
      unplaced.append(f'{client_id} (sites {", ".join(entry["sites"])})')
    else:
      routes[client_id] = holders.pop()
  if unplaced:
    raise ValueError('no single worker holds the data of client(s) ' + '; '.join(unplaced)
                     + f'; the workers hold sites {sorted(site_worker)}')
  return routes
