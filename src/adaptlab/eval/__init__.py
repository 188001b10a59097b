"""The evaluation harness: cases → strategy answers → metrics with confidence intervals → tracked runs."""
