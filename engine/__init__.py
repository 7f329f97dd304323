"""engine: a Python re-implementation of the OceanBase Cloud Platform host agent.

One package or module per concern, named for it (``supervisor/`` is
ocp_agentd, ``workers/`` one module per OCP process, ``logs/`` ob_logtailer's
logic...); each package's docstring says what it holds and leaves to others,
and docs/CONTRIBUTING.md maps the rooms and the data's way through them.
"""
__version__ = "0.1.0"
