"""gpu-lol: read an ML repo, pick a GPU that fits the work, launch it through SkyPilot."""

__version__ = "0.1.0"
