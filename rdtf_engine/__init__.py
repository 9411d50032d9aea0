"""rdtf_engine: headless RDTF sticker generation and training (arXiv 2503.17735).

Importing this package is cheap (no torch): the app imports ``events``, ``requests`` and ``errors`` on its GUI
thread. Heavy modules (model, pipeline, train) import torch themselves.
"""

__version__ = "0.1.0"
