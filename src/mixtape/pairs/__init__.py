"""mixtape.pairs"""
