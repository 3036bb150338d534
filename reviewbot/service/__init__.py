"""The GitHub App service: the web app, webhook intake, the job worker, and the one review pipeline."""
