"""mixtape.search"""
