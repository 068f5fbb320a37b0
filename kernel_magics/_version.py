"""The package version, shared by the wheel, the lab extension and run tags."""

__version__ = "0.1.0"
