from cnnkit.search.report import pareto_front


def test_pareto_front_keeps_only_undominated_points_by_macs():
    points = [(0.90, 100, "a"), (0.95, 300, "b"), (0.85, 200, "c"), (0.95, 250, "d"), (0.99, 1000, "e")]
    # c is beaten by a (more accurate, fewer MACs); b by d (same accuracy, fewer MACs)
    assert pareto_front(points) == ["a", "d", "e"]
    assert pareto_front([]) == []
    assert pareto_front([(0.5, 10, "x"), (0.5, 10, "y")]) == ["x", "y"]  # ties dominate neither


def test_importances_name_the_parameter_that_matters():
    import optuna

    from cnnkit.search.report import importances

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("lr", 0, 1) + 0.01 * t.suggest_float("noise", 0, 1), n_trials=12)
    imp = importances(study)
    assert list(imp) == ["lr", "noise"] and imp["lr"] > 0.8
    assert importances(study) == imp  # seeded: the same numbers every time
    few = optuna.create_study(direction="maximize")
    few.optimize(lambda t: t.suggest_float("lr", 0, 1) + t.suggest_float("b", 0, 1), n_trials=3)
    assert importances(few) == {}  # under 4 complete trials: not computed
