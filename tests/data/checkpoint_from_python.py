"""Writes a safetensors file with numpy (the Python ecosystem's writer) for
layers/tests/train.rs to read with matgrad's checkpoint loader, and reads back a file
written by matgrad (when one is given). Shows the checkpoint format is the shared one.

Run: python3 -m venv .venv && .venv/bin/pip install safetensors numpy
     .venv/bin/python tests/data/checkpoint_from_python.py tests/data/from_python.safetensors
"""
import sys
import numpy as np
from safetensors.numpy import save_file

w = np.arange(6, dtype=np.float64).reshape(3, 2) / 4.0
z = np.stack([np.array([[1.5, 0.0]]), np.array([[-2.0, 3.0]])], axis=-1)  # complex as [..., 2]
save_file({"layer.w": w, "layer.z": z}, sys.argv[1])
