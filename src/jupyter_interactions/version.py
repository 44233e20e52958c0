"""The package's version, in a module of its own: both sides read it, and importing the package
root would name the other side."""

__version__ = "0.1.0.dev0"
