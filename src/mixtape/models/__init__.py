"""mixtape.models"""
