"""The bottom layer: errors, the sweep directory's layout and records (manifest, run
state, index), the config schema, and the pure rules every stage shares (packing,
secrets). Imports nothing else of paddle_hpc."""
