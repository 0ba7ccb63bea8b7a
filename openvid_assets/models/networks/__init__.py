"""Architectures, one per file (as timm does), each with its strict loader of the published weights."""
