"""Deal Scout engine: domain models, matching, scanning, scheduling, delivery and wiring."""

__version__ = "0.1.0"
