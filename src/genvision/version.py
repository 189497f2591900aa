"""The package version, in a module of its own so every layer can stamp it (run.json, the
CLI's ``--version``) without importing the package ``__init__`` and what it loads."""

__version__ = "0.1.0"  # keep equal to pyproject.toml's [project] version
