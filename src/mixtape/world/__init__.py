"""mixtape.world"""
