"""The scenarios of ``engine bench``: ``bench/<name>.py`` with ``run(quick) -> dict`` (see :mod:`bench._common`)."""
