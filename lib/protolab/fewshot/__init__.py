"""Few-shot learning with prototypical networks, Euclidean or hyperbolic (Khrulkov et al., CVPR 2020, Sec. 6.2):
heads, the official configs, the train-and-test protocol."""
