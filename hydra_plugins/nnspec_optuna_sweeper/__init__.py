"""nnspec's Optuna sweeper for Hydra (filled in by the Hydra issue)."""
