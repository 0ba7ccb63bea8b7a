"""openvid-assets: an OpenVid-1M-style text-to-video data curation pipeline on Dagster."""

__version__ = "0.1.0"
