"""tensorflow-datasets builder for ATLAS R2.0 (stroke T1w with lesion masks).

  import tensorflow_datasets as tfds
  from data_pipelines.atlas_r2 import atlas_r2_dataset_builder  # registers atlas_r2
  ds = tfds.load('atlas_r2', split='train',
                 download_and_prepare_kwargs={'download_config':
                     tfds.download.DownloadConfig(manual_dir='/data/ATLAS_2')})

One example per subject-session of the Training folder, keyed by
'sub-r001s001_ses-1': the T1w volume and lesion mask in RAS+ orientation
(nibabel closest canonical), the voxel-to-world affine, and the cohort as site.
A subject whose files cannot be used is logged and left out.
"""

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import atlas
from data_pipelines import nifti

_DESCRIPTION = """
ATLAS R2.0 (Anatomical Tracings of Lesions After Stroke; Liew et al., Scientific
Data 2022): 655 T1-weighted MRI in MNI152NLin2009aSym space with manually traced
lesion masks, from 33 cohorts (the natural sites of federated learning).
"""

_CITATION = """
@article{liew2022atlas,
  title={A large, curated, open-source stroke neuroimaging dataset to improve lesion segmentation algorithms},
  author={Liew, Sook-Lei and others},
  journal={Scientific Data}, volume={9}, pages={320}, year={2022}}
"""


class Builder(tfds.core.GeneratorBasedBuilder):
  """ATLAS R2.0 Training volumes with their lesion masks, from a manual download."""

  name = 'atlas_r2'
  VERSION = tfds.core.Version('2.0.0')
  RELEASE_NOTES = {'2.0.0': 'ATLAS R2.0 Training folder (BIDS layout).'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  ATLAS R2.0 is a registered download (https://fcon_1000.projects.nitrc.org/indi/retro/atlas.html).
  Decrypt and extract it, then give its ATLAS_2 folder as manual_dir. Expected layout:
    manual_dir/Training/R001/sub-r001s001/ses-1/anat/sub-r001s001_ses-1{atlas.T1W_SUFFIX}
    manual_dir/Training/R001/sub-r001s001/ses-1/anat/sub-r001s001_ses-1{atlas.MASK_SUFFIX}
  (cohort folders R001 ... R052; one session per subject).
  """

  def _info(self) -> tfds.core.DatasetInfo:
    volume = lambda dtype: tfds.features.Tensor(shape=(None, None, None), dtype=dtype,
                                                encoding='zlib')
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict({
            't1w': volume(np.float32),
            'mask': volume(np.uint8),
            'affine': tfds.features.Tensor(shape=(4, 4), dtype=np.float64),
            'subject_id': tfds.features.Text(),
            'session': tfds.features.Text(),
            'site': tfds.features.Text(),
        }),
        supervised_keys=('t1w', 'mask'),
        homepage='https://fcon_1000.projects.nitrc.org/indi/retro/atlas.html',
        citation=_CITATION,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    return {'train': self._generate_examples(str(dl_manager.manual_dir))}

  def _generate_examples(self, root: str):
    for subject in atlas.discover(root):
      try:
        image = nifti.load_volume(subject.image_paths[0])
        mask = nifti.load_mask(subject.mask_path, image, image_path=subject.image_paths[0],
                               labels=(0, 1))
      except nifti.NiftiError as e:
        logging.warning('atlas_r2: skipped %s: %s', subject.key, e)
        continue
      yield subject.key, {
          't1w': image.data, 'mask': mask, 'affine': image.affine.astype(np.float64),
          'subject_id': subject.subject_id, 'session': subject.session, 'site': subject.site,
      }
