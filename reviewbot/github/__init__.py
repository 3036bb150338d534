"""The GitHub side: the REST client and App auth (the only githubkit importers), and building and posting a review."""
