"""Where the test data lives, resolved in this one place.

``tests/data`` holds real git diffs from public repositories and real GitHub webhook payloads
(see the READMEs for sources and licences), so the suite needs nothing outside the repository.
"""

from pathlib import Path

TEST_DATA: Path = Path(__file__).resolve().parent / "data"
FIXTURE_DIFFS: Path = TEST_DATA / "diffs"
SAMPLE_DIFFS: Path = TEST_DATA / "samples"
WEBHOOKS: Path = TEST_DATA / "github-webhooks"
