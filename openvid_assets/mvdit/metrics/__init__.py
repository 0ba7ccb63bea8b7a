"""The paper's metrics of generated videos (mvdit/evaluate.py is their one user): CLIP score and temporal
consistency, warping error (video.py), BLIP-2 captions and BLEU (blip_bleu.py)."""
