"""The GitHub side: the REST client (the one githubkit importer), and building and posting a review."""
