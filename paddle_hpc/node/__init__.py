"""What runs on the compute nodes of a run's allocation: the node runner (`runner`),
Paddle's launch command (`launch`), packed trials (`trials`), containers (`container`,
`guest`, `image_digest`), and the clean-up of what a launcher leaves (`orphans`).
Imports neither pandas nor Hydra."""
