"""engine: a Python re-implementation of the OceanBase Cloud Platform host agent."""
__version__ = "0.1.0"
