from cnnkit.search.report import pareto_front


def test_pareto_front_keeps_only_undominated_points_by_macs():
    points = [(0.90, 100, "a"), (0.95, 300, "b"), (0.85, 200, "c"), (0.95, 250, "d"), (0.99, 1000, "e")]
    # c is beaten by a (more accurate, fewer MACs); b by d (same accuracy, fewer MACs)
    assert pareto_front(points) == ["a", "d", "e"]
    assert pareto_front([]) == []
    assert pareto_front([(0.5, 10, "x"), (0.5, 10, "y")]) == ["x", "y"]  # ties dominate neither
