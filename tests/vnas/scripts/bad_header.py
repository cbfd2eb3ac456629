"""Writes a frame prefix whose header is not JSON: the worker must refuse it, not wait for more."""

import os
import struct

os.write(1, struct.pack(">4sII", b"VNF1", 5, 0) + b"nope!")
os.read(0, 1)
