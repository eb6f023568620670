"""Trajectory files, datasets, downloads and battle generation.

Submodules are imported on demand (``metamon.data.trajectory_file``, ``metamon.data.download``)
so that reading a trajectory file does not import torch.
"""
