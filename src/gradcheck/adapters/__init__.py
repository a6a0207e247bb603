"""Adapters for autodiff frameworks: check PyTorch and JAX code with gradcheck's numerics.

Each adapter is imported on demand (``from gradcheck.adapters import torch``) and imports its
framework lazily, so gradcheck itself needs only numpy.
"""
