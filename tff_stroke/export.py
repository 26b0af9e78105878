"""Export of the global model as a TF SavedModel that stock TensorFlow serves."""

import os
import shutil
import tempfile

import tensorflow as tf

PRIVACY_REPORT_ASSET = 'privacy_report.json'


def export_saved_model(model: tf.keras.Model, export_dir: str, *,
                       privacy_report_path: str) -> None:
  """Writes `model` as a SavedModel with a `serving_default` signature.

  `serving_default` takes normalised slices, float32 [batch, H, W, C], and
  returns {'lesion_probability': [batch, H, W, 1]}. The run's privacy report
  is copied unchanged into the SavedModel's assets as privacy_report.json.
  """
  input_spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name='image')

  @tf.function(input_signature=[input_spec])
  def serve(image):
    return {'lesion_probability': model(image, training=False)}

  tmp_dir = export_dir + '.tmp'
  shutil.rmtree(tmp_dir, ignore_errors=True)
  with tempfile.TemporaryDirectory() as staging:
    report_copy = os.path.join(staging, PRIVACY_REPORT_ASSET)
    shutil.copyfile(privacy_report_path, report_copy)
    module = tf.Module()
    module.model = model
    module.privacy_report = tf.saved_model.Asset(report_copy)
    module.serve = serve
    tf.saved_model.save(module, tmp_dir, signatures={'serving_default': serve})
  shutil.rmtree(export_dir, ignore_errors=True)
  os.replace(tmp_dir, export_dir)
