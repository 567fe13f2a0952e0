"""Dataset measures: families of variations, redundancy, spread and coverage."""
