"""paddle_hpc inside other tools: the Hydra launcher plugin (`hydra_launcher`)."""
