"""Training and inference loops, episodic samplers, and the loaders that feed the device."""
