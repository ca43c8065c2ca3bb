"""Hyperparameter and architecture search (`cnnkit tune`) with Optuna: a YAML search space over
config keys and the spec grammar (space.py, grammar.py), a study whose trials are ordinary run
folders (study.py), and its report (report.py)."""
