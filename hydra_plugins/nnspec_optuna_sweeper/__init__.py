"""nnspec's Optuna sweeper for Hydra (``hydra/sweeper=nnspec_optuna``), on current Optuna (>= 4).

Hydra discovers it through the ``hydra_plugins`` namespace package. The search space is written in
Hydra's override grammar on the keys themselves (``optim.lr='tag(log, interval(1e-4, 1e-1))'``,
``optim=choice(adam, sgd)``, ``model.layers.0.out_features=range(16, 129, 16)``); the study lives in
an Optuna journal file in the sweep directory, so rerunning the same command resumes it.
"""
