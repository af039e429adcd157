"""Gromov δ-hyperbolicity of datasets (Khrulkov et al., CVPR 2020, Sec. 3) and the feature spaces it is measured in."""
