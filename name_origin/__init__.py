"""name-origin inference: guess the language of origin of a surname.

Everything the app needs (encoding, the model, prediction, evidence, views, which model to serve)
and nothing of training. Importing it has no side effects; `trainer/` builds on it.
"""

__version__ = "0.2.0"
