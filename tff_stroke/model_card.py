"""The model card shipped in the SavedModel's assets (model_card.md)."""

from typing import Optional

from tff_stroke import evaluation as evaluation_lib


def training_data_summary(manifest: dict) -> dict:
  """Per-site training counts from a prepared folder's manifest."""
  per_site = {}
  for client in manifest['clients'].values():
    for site in client['sites']:
      counts = per_site.setdefault(site, {'clients': 0, 'subjects': 0, 'slices': 0})
      counts['clients'] += 1
      if len(client['sites']) == 1:
        counts['subjects'] += len(client['subjects'])
        counts['slices'] += client['num_examples']
  return {
      'client_unit': manifest['client_unit'],
      'num_clients': len(manifest['clients']),
      'per_site': dict(sorted(per_site.items())),
      'partition': manifest['partition']['scheme'],
      'held_out_subjects': len(manifest['holdout']['subjects']),
      'held_out_sites': manifest['split']['test_sites'],
      'skipped_subjects': len(manifest['skipped']),
      'source_layout': manifest['source']['layout'],
  }


def _fmt(value: Optional[float], digits: int = 3) -> str:
  return 'n/a' if value is None else f'{value:.{digits}f}'


def _privacy_lines(report: Optional[dict]) -> list[str]:
  if report is None:
    return ['- **Not differentially private**: a centralised reference trained on '
            'pooled data, for comparison only. Do not share it outside the data holders.']
  epsilon = report['epsilon_pld'] if report['epsilon_pld'] is not None else report['epsilon_rdp']
  accountant = 'PLD' if report['epsilon_pld'] is not None else 'RDP'
  if epsilon is None:
    return ['- **Not differentially private**: trained federated without a finite '
            f'privacy bound ({report["mechanism"]["algorithm"]}). Do not share it '
            'outside the data holders.',
            '- `privacy_report.json` in these assets is the run\'s report, unchanged.']
  return [
      f'- ({_fmt(epsilon, 4)}, {report["delta"]:g})-differential privacy ({accountant}) '
      f'with respect to {report["unit_of_privacy_meaning"]}, over all '
      f'{report["rounds_completed"]} rounds of the run (a bound for every model '
      'it released, this one included).',
      f'- Noise multiplier {report["noise_multiplier"]}, {report["sampling_meaning"]}, '
      f'q = {report["sampling_probability"]:.4g}.',
      '- The full report is `privacy_report.json` in these assets, unchanged; '
      'an auditor re-checks it from the run folder with '
      '`python -m experiments.privacy_report --run_dir=RUN --verify`.',
  ]


def render_model_card(*, config: dict, report: Optional[dict], evaluation: Optional[dict],
                      training_data: dict, provenance: str, preprocessing: dict) -> str:
  """Markdown: use, data, evaluation, privacy guarantee and limitations.

  `report` None marks a model trained without differential privacy;
  `provenance` says which training produced the weights.
  """
  lines = [
      '# Model card: stroke lesion segmentation U-Net', '',
      '## Intended use', '',
      'Research on federated, differentially private lesion segmentation of '
      'brain MRI. **Not for clinical decisions**: it is not a medical device, '
      'and its outputs must not guide diagnosis or treatment.', '',
      '## Model', '',
      f'- U-Net with GroupNorm, base filters {config["base_filters"]}, input '
      f'{preprocessing["image_size"]}x{preprocessing["image_size"]} axial slices, '
      f'channels {", ".join(preprocessing["channels"])}; sigmoid output, '
      'lesion probability per pixel; loss Dice + BCE.',
      f'- {provenance} (experiment `{config["experiment_name"]}`, seed {config["seed"]}).',
      f'- Input: RAS+ volumes resampled to {preprocessing["spacing_mm"]} mm; the '
      '`segment_volume` signature does the rest (see preprocessing.json).', '',
      '## Training data', '',
      f'{training_data["num_clients"]} clients, one per {training_data["client_unit"]}; '
      f'{training_data["held_out_subjects"]} subjects held out for evaluation; '
      f'{training_data["skipped_subjects"]} subjects skipped at conversion '
      f'(layout `{training_data["source_layout"]}`).', '',
      '| Site | Clients | Training subjects | Training slices |',
      '|---|---|---|---|',
  ]
  lines += [f'| {site} | {c["clients"]} | {c["subjects"]} | {c["slices"]} |'
            for site, c in training_data['per_site'].items()]
  lines += ['', '## Evaluation', '']
  if evaluation is None:
    lines.append('Not evaluated (the prepared data was not available at export).')
  else:
    lines += [f'Held-out subjects, volume metrics per subject averaged per site '
              f'(threshold {evaluation["threshold"]}).', '',
              *evaluation_lib.markdown_table(evaluation)]
  lines += ['', '## Privacy', '', *_privacy_lines(report), '',
            '## Limitations', '',
            '- Trained on the data summarised above; performance on other scanners, '
            'sequences, populations or lesion types is unknown.',
            '- 2D axial slices: no 3D context across slices.',
            '- Differential privacy noise lowers accuracy; small lesions suffer most.',
            '- The privacy guarantee assumes a trusted server and the sampling stated; '
            'held-out evaluation data is not covered by it.']
  return '\n'.join(lines) + '\n'
