"""reviewbot: pull-request review with cheap code models and an exact cost note."""

__version__ = "0.1.0"
