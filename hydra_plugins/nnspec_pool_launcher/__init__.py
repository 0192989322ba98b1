"""nnspec's local parallel launcher for Hydra (``hydra/launcher=nnspec_pool``).

Each trial runs in its own child process, at most ``n_jobs`` at a time. On Linux the children are
forked from the launching process after it has imported the training stack once, so a trial's
process starts warm (the fork takes milliseconds; Hydra's per-trial composition follows) instead of
paying a fresh interpreter's imports (what Hydra's joblib launcher pays per worker: it
hard-codes loky, whose workers are new interpreters).
"""
