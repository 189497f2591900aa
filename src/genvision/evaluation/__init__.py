"""Scoring runs: likelihoods and sample metrics, each number with its protocol."""
