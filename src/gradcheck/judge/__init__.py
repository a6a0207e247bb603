"""Stage 4 — verdicts: error measures, pass / FAIL / kink / inconclusive with error bars,
the kink test and the second look at entries the first estimate cannot settle."""
