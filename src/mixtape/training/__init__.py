"""mixtape.training"""
