"""What picks and loads models: the catalog of names and weights files, weights resolution, devices and
seeds, and which frames CLIP samples. Imports no network."""
