"""The review engine: diff text in, anchored findings and their cost out; nothing of GitHub, service or store."""
