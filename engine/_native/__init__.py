"""Built extensions only: ``ext/<name>.pyx`` compiles to ``engine._native.<name>``
(``python setup.py build_ext --inplace``). Each has a pure-Python twin in
:mod:`engine._ref` that the tests compare it with; no other code lives here."""
