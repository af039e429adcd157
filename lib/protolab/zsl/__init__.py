"""Generalised zero-shot learning: the Isometric Propagation Network (Liu et al., ICLR 2021), its fitting and
evaluation, the baselines, and the grid set-up of the IPN studies."""
