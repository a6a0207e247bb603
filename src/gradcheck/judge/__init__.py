"""Stage 4 — verdicts: error measures, pass / FAIL / kink / inconclusive with error bars, the
validated ladder of steps (its kink test, the averaged last look), entries judged together
along a direction, and the significance screen."""
