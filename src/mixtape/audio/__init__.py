"""mixtape.audio"""
