"""name-origin trainer: a character-level BiGRU that guesses a surname's language of origin.

Importing this package has no side effects; `python -m trainer` runs the CLI.
"""

__version__ = "0.1.0"
