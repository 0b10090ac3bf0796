"""mixtape.evaluation"""
