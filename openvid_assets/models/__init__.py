"""Pure torch models: CLIP embedder, aesthetic head, flow, clarity, captioner, weight resolution."""
