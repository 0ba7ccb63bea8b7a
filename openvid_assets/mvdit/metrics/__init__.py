"""The paper's metrics of generated videos (mvdit/evaluate.py is their one user): EvalCrafter's formulas
(evalcrafter.py) and BLIP-2 frame captions (blip_bleu.py)."""
