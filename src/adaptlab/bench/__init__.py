"""`adaptlab bench`: every strategy built, measured with one harness, priced, recommended, reported."""
