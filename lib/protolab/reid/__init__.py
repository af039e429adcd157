"""Person re-identification (Khrulkov et al., CVPR 2020, Sec. 6.3): model, fit, tables."""
