"""Models and running them over shards, by role (each subpackage imports only those before it):

- ``registry``: what models exist (catalog), where their weights come from (weights), devices, seeds and
  out-of-memory retries (runtime), which frames CLIP sees (sampling);
- ``networks``: one architecture per file with its strict loader (UniMatch, DOVER, TransNetV2, RAFT, the LAION
  aesthetic head, the safety checker's concepts);
- ``scorers``: the scorers behind ``scorers.base.VideoScorer`` (motion, clarity) and the other wrappers
  that turn frames or embeddings into numbers or text (CLIP, aesthetic, NSFW, text, content measures,
  captioner, TransNetV2 as the cut cascade's shot detector);
- ``shards``: a shard's videos through those (decode-ahead threads, failure rows, row reuse) and the
  schemas of the tables they write; ``profiles``: which scorers and weights each profile builds.
"""
