"""Curation decisions fitted or searched over the stored tables: cut lines and learned filters from people's
labels (scikit-learn), near-duplicate groups (faiss). No torch and no network pass, so not models/: it reads
the stored scores and embeddings (models.shards.tables) and sits above models."""
