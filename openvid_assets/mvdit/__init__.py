"""MVDiT: the model, diffusion, training loop and sampling."""
