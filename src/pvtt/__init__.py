"""pvtt: build Product Video Template Transfer datasets."""

__version__ = "0.1.0"
