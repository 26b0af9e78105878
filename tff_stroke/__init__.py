"""Federated, differentially private lesion segmentation with TensorFlow Federated."""
