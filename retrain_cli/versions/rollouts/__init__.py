"""Rollouts: a rollout's state from its rows and events, its moves, and the analysis of the rows
each version served."""
