"""Stage 3 — numeric estimates with error bars: finite-difference schemes and the complex
step, step-size policy, the loss's rounding noise, and whether the complex step is safe."""
