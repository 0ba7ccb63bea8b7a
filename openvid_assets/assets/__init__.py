"""Dagster only: thin assets, partitions, sensors and resources over the pure layers."""
