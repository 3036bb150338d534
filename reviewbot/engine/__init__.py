"""The review engine: diff text in, anchored findings and their cost out.

It imports nothing of GitHub, the service or the store.
"""
